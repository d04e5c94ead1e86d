"""A record with values SQLite cannot store costs nothing but itself: never its batch's other calls.

Client input reaches the ledger unchecked: `json.loads('"\\ud800"')` is a str with a lone
surrogate, which UTF-8 cannot encode, and a provider's usage may hold any JSON number.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import payi_web
from payi_web.core.records import Units
from payi_web.ledger import LedgerSink

from .helpers import T0, ask, chat_client, make_call, rows

MakeSink = Callable[..., LedgerSink]

LONE = json.loads('"\\ud800"')  # a lone surrogate, as a JSON body or query string can carry it
HUGE = 2**63  # one past SQLite's largest INTEGER


def _usage(prompt: str) -> dict[str, Any]:
    prompt_tokens = HUGE if prompt.startswith("huge-usage") else 10
    return {"prompt_tokens": prompt_tokens, "completion_tokens": 5, "total_tokens": prompt_tokens + 5}


def test_bad_values_from_many_users_at_once_cost_no_other_call(app_ledger: LedgerSink, db: Path) -> None:
    client = chat_client(_usage)
    threads_n, per_thread = 8, 60
    barrier = threading.Barrier(threads_n)
    # (A use case version beyond 64 bits is refused where the scope is declared, never recorded.)
    kinds = ("good", "lone-user", "lone-property", "huge-usage")

    def work(t: int) -> None:
        user = f"user-{t}"
        barrier.wait()
        for i in range(per_thread):
            kind = kinds[i % len(kinds)]
            fields: dict[str, Any] = {"user_id": user + LONE if kind == "lone-user" else user}
            if kind == "lone-property":
                fields["request_properties"] = {"note": "a" + LONE}
            with payi_web.track_context(**fields):
                ask(client, f"{kind} {t}-{i}")

    threads = [threading.Thread(target=work, args=(t,)) for t in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert payi_web.flush(10)

    by_id = {row["response_id"]: row for row in rows(db)}
    assert len(by_id) == threads_n * per_thread  # every call, the bad ones too, once
    for t in range(threads_n):
        for i in range(per_thread):
            kind = kinds[i % len(kinds)]
            row = by_id[f"chatcmpl-{kind} {t}-{i}"]
            # Each call with its own user: lone surrogates become U+FFFD, the rest is kept.
            assert row["user_id"] == (f"user-{t}\ufffd" if kind == "lone-user" else f"user-{t}")
            assert row["model"] == "gpt-4o-mini" and row["status"] == 200
            if kind == "lone-property":
                assert json.loads(row["request_properties"]) == {"note": "a\ufffd"}
            if kind == "huge-usage":  # beyond 64 bits: unknown, not a clamped or zero count
                assert (row["input_tokens"], row["text_input_tokens"]) == (None, None)
                assert (row["output_tokens"], row["text_output_tokens"]) == (5, 5)
            else:
                assert (row["input_tokens"], row["output_tokens"]) == (10, 5)
    stats = app_ledger.stats
    assert (stats.written, stats.failed, stats.dropped) == (threads_n * per_thread, 0, 0)


def test_invalid_token_counts_are_unknown_never_zero(make_sink: MakeSink, db: Path) -> None:
    sink = make_sink()
    bad_counts: list[Any] = [float("nan"), -1, 2.5, HUGE, float("inf")]
    for value in bad_counts:
        sink.record(
            make_call(units={"text": Units(value, 5), "reasoning": Units(0, 2)}, response_id=repr(value))
        )
    sink.record(make_call(units={"text": Units(7, 5), "reasoning": Units(0, 2)}, response_id="good"))
    assert sink.flush(5)
    *bad, good = rows(db)
    assert [row["response_id"] for row in bad] == [repr(value) for value in bad_counts]
    for row in bad:
        assert (row["text_input_tokens"], row["input_tokens"]) == (None, None)
        assert (row["text_output_tokens"], row["reasoning_tokens"], row["output_tokens"]) == (5, 2, 7)
        assert json.loads(row["units"]) == {
            "text": {"input": None, "output": 5},
            "reasoning": {"input": 0, "output": 2},
        }
    assert (good["text_input_tokens"], good["input_tokens"], good["output_tokens"]) == (7, 7, 7)
    assert sink.stats.failed == 0


def test_every_text_column_and_number_is_stored_sanitised(make_sink: MakeSink, db: Path) -> None:
    sink = make_sink()
    sink.record(
        make_call(
            model="gpt" + LONE,
            response_id="id" + LONE,
            url="https://api.openai.test/v1/" + LONE,
            status=HUGE,
            latency_ms=float("nan"),
            context={
                "account_name": LONE,
                "use_case_name": "uc" + LONE,
                "use_case_step": LONE + LONE,
                "use_case_properties": {"k" + LONE: "v"},
                "limit_ids": ("cap" + LONE,),
            },
        )
    )
    sink.record(
        make_call(model="gpt-4o-mini", context={"user_id": "José \U0001f600"})
    )  # valid non-ASCII kept
    assert sink.flush(5)
    odd, plain = rows(db)
    assert (odd["model"], odd["response_id"], odd["url"]) == (
        "gpt\ufffd",
        "id\ufffd",
        "https://api.openai.test/v1/\ufffd",
    )
    assert (odd["account_name"], odd["use_case_name"], odd["use_case_step"]) == (
        "\ufffd",
        "uc\ufffd",
        "\ufffd\ufffd",
    )
    assert json.loads(odd["use_case_properties"]) == {"k\ufffd": "v"}
    assert json.loads(odd["limit_ids"]) == ["cap\ufffd"]
    assert (odd["status"], odd["latency_ms"]) == (None, None)
    assert plain["user_id"] == "José \U0001f600"
    assert sink.stats.written == 2


def test_a_record_that_cannot_be_stored_costs_only_itself(
    make_sink: MakeSink, db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sink = make_sink()
    with caplog.at_level(logging.WARNING, logger="payi_web"):
        sink.record(make_call(response_id="first"))
        sink.record(make_call(timestamp=None, response_id="no-time"))  # type: ignore[arg-type]
        sink.record(make_call(response_id="second"))
        assert sink.flush(5) is False  # one record was lost
        sink.record(make_call(timestamp="noon", response_id="bad-time"))  # type: ignore[arg-type]
        sink.record(make_call(timestamp=T0, response_id="third"))
        assert sink.flush(5) is False
        assert sink.flush(5) is True  # nothing lost since
    assert [row["response_id"] for row in rows(db)] == ["first", "second", "third"]
    assert (sink.stats.written, sink.stats.failed) == (3, 2)
    logged = [r for r in caplog.records if "cannot store a call record" in r.getMessage()]
    assert len(logged) == 1  # once, however many
