"""Differential test: payi-web's headers against Pay-i's own SDK (payi==0.1.0a183), on generated scenarios.

Hypothesis generates scenarios in the conformance format (tests/data/conformance-README.md): a
root configuration, a tree of `track_context` / `@track` scopes up to four deep, and calls with
or without explicit `extra_headers`. Each scenario runs twice:

- through Pay-i's SDK (the oracle): its instrumentor, built offline, holds the configuration as
  its global context; `payi.lib.instrument.track_context` / `track` nest the scopes; at each call
  the headers are what its invoke wrapper sends in proxy mode (the caller's `extra_headers`
  copied, then `_update_extra_headers(context, headers, proxy=True)`);
- through payi-web, with `tests.conformance.run_scenario`.

The oracle's output becomes the scenario's `expected` part (generated use case ids replaced by
`<uuid:N>` placeholders) and `tests.conformance.compare` checks payi-web against it, with the
documented tolerances (empty explicit headers, limit ids as sets, ...). The generators keep to
what both sides define identically:

- printable ASCII only (payi-web percent-encodes other text, Pay-i's SDK raises), and no space
  at either end of a header value (payi-web percent-encodes it, since h11 refuses it: the SDK's
  call fails);
- limit ids non-empty and without commas, versions >= 0 (payi-web rejects the others);
- `@track` gets only the arguments Pay-i's `track` takes (no use_case_step, price_as_*,
  resource_scope);
- an explicit xProxy-UseCase-ID / -Version / -Step only together with an explicit
  xProxy-UseCase-Name (without one payi-web keeps the caller's value on purpose, the SDK
  overwrites it with the context's);
- explicit Pay-i header names are sent to payi-web in random letter case and to the SDK in its
  canonical spelling (the SDK matches names case-sensitively, payi-web does not).
"""

from __future__ import annotations

import copy
import json
import logging
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, cast

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from payi import Payi
from payi.lib import instrument as payi_sdk
from payi.lib.helpers import PayiHeaderNames

import payi_web
from tests.conformance import compare, run_scenario, scenarios

Step = dict[str, Any]
Seen = list[tuple[str, dict[str, str]]]

MAX_DEPTH = 4
PRINTABLE_ASCII = "".join(chr(code) for code in range(0x20, 0x7F))

H = PayiHeaderNames
# The Pay-i headers a caller may set explicitly, in the SDK's (canonical, case-sensitive) spelling.
CANONICAL = {
    name.lower(): name
    for name in (
        H.use_case_name,
        H.use_case_id,
        H.use_case_version,
        H.use_case_step,
        H.use_case_properties,
        H.limit_ids,
        H.user_id,
        H.account_name,
        H.request_properties,
        H.price_as_category,
        H.price_as_resource,
        H.resource_scope,
        H.logging_disable,
    )
}
USE_CASE_DETAILS = (H.use_case_id, H.use_case_version, H.use_case_step)
# A header no Pay-i rule touches: both sides must pass it through as is.
OTHER_HEADER = "X-Trace"

logger = logging.getLogger(__name__)


# --- Pay-i's SDK, offline -------------------------------------------------------------------------


class _OfflineInstrumentor(payi_sdk._PayiInstrumentor):
    """Pay-i's instrumentor without its process-wide hooks.

    The constructor wraps `ThreadPoolExecutor.submit`, `asyncio.create_task` and `asyncio.gather`
    for the whole process, once more per instance; none of that touches headers, and it would
    leak into the rest of the test session. Everything else (the global context built from the
    configuration, the scope rules, the header rules) is the SDK's own code.
    """

    def _instrument_futures(self) -> None:
        pass


def _refuse_network(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"the Pay-i oracle must stay offline; it tried {request.method} {request.url}")


@pytest.fixture(scope="module")
def payi_client() -> Iterator[Payi]:
    """A Pay-i client that cannot reach any network: the instrumentor wants one, it never calls it."""
    http_client = httpx.Client(transport=httpx.MockTransport(_refuse_network))
    client = Payi(
        api_key="offline-test-key", base_url="http://payi.invalid", http_client=http_client, max_retries=0
    )
    yield client
    client.close()


@contextmanager
def _payi_instrumented(config: Mapping[str, Any], client: Payi) -> Iterator[payi_sdk._PayiInstrumentor]:
    """A fresh SDK instrumentor with `config` as its global context, installed for `track`/`track_context`.

    Its context stack lives in thread-local storage owned by the instance, so a new instance per
    scenario starts from nothing but the global context, in this thread.
    """
    instrumentor = _OfflineInstrumentor(
        payi=client,
        apayi=None,
        instruments=set(),  # instrument no provider client
        logger=logger,
        # The constructor consumes and edits its config; the scenario's stays intact.
        global_config=cast(payi_sdk.PayiInstrumentConfig, copy.deepcopy(dict(config))),
        # payi_instrument() would name a default use case after its caller's file; the
        # recorded scenarios (and payi-web) have no use case unless the configuration names one.
        caller_filename="",
    )
    previous = payi_sdk._instrumentor
    payi_sdk._instrumentor = instrumentor
    try:
        yield instrumentor
    finally:
        payi_sdk._instrumentor = previous


def run_payi_sdk(scenario: Mapping[str, Any], client: Payi) -> Seen:
    """Run the scenario's steps through Pay-i's SDK; the headers each call would send to the proxy."""
    seen: Seen = []
    with _payi_instrumented(scenario["config"], client) as instrumentor:

        def run(steps: Sequence[Step]) -> None:
            for step in steps:
                if step["op"] == "call":
                    # What the SDK's invoke wrapper does in proxy mode, with the names it knows.
                    headers = {
                        CANONICAL.get(n.lower(), n): v for n, v in step.get("extra_headers", {}).items()
                    }
                    context = instrumentor._context
                    assert context, "the global context is always there"
                    instrumentor._update_extra_headers(context, headers, proxy=True)
                    seen.append((step["label"], headers))
                elif step["op"] == "context":
                    with payi_sdk.track_context(**copy.deepcopy(step["args"])):
                        run(step.get("steps", []))
                elif step["op"] == "track":

                    def body(children: Sequence[Step]) -> None:
                        run(children)

                    tracked: Callable[[Sequence[Step]], None] = payi_sdk.track(**copy.deepcopy(step["args"]))(
                        body
                    )
                    tracked(step.get("steps", []))
                else:
                    raise AssertionError(f"unknown op {step['op']!r}")

        run(scenario["steps"])
    return seen


def _literal_use_case_ids(scenario: Mapping[str, Any]) -> set[str]:
    """Every use case id the scenario spells out; any other id the SDK sends, it generated."""
    ids = {scenario["config"].get("use_case_id")}

    def walk(steps: Sequence[Step]) -> None:
        for step in steps:
            if step["op"] == "call":
                ids.update(
                    v for n, v in step.get("extra_headers", {}).items() if n.lower() == "xproxy-usecase-id"
                )
            else:
                ids.add(step["args"].get("use_case_id"))
                walk(step["steps"])

    walk(scenario["steps"])
    return {value for value in ids if value is not None}


def expected_from_sdk(seen: Seen, literal_ids: set[str]) -> list[dict[str, Any]]:
    """The oracle's output in the conformance format: generated ids become `<uuid:N>` placeholders."""
    placeholders: dict[str, str] = {}
    expected: list[dict[str, Any]] = []
    for label, sent in seen:
        headers = dict(sent)
        use_case_id = headers.get(H.use_case_id)
        if use_case_id and use_case_id not in literal_ids:
            assert uuid.UUID(use_case_id).version == 4, (label, use_case_id)
            headers[H.use_case_id] = placeholders.setdefault(use_case_id, f"<uuid:{len(placeholders) + 1}>")
        expected.append({"label": label, "headers": headers})
    return expected


# --- Scenario generators --------------------------------------------------------------------------


# Values come from small pools, so that parents and children collide (same name, same user,
# same property key, ...): that is where the inheritance rules live. Each pool also has "" (it
# blocks inheritance) and one odd value with spaces, quotes, a backslash and other printable
# ASCII punctuation that JSON or a header could trip on (spaces inside: see the docstring).
ODD = '{"q": [\\x]}; ~`!@#$%^&*()=+ ,}'
ODD_LIMIT_ID = ODD.replace(",", "")  # payi-web rejects a comma in a limit id


def _string(*pool: str) -> st.SearchStrategy[str]:
    return st.sampled_from(("", *pool, ODD))


_properties = st.dictionaries(
    keys=st.sampled_from(("a", "b", "c", ODD)),
    values=st.none() | st.sampled_from(("1", "2", "", ODD)) | st.text(alphabet=PRINTABLE_ASCII, max_size=6),
    max_size=3,
)  # {} blocks inheritance

FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "use_case_name": _string("alpha", "beta"),
    "use_case_id": _string("id-a", "id-b"),
    "use_case_version": st.sampled_from((0, 1, 2, 2**31)),
    "use_case_step": _string("s1", "s2"),
    "use_case_properties": _properties,
    "limit_ids": st.lists(st.sampled_from(("l1", "l2", "l3", ODD_LIMIT_ID)), max_size=3),  # [] blocks
    "user_id": _string("u1", "u2"),
    "account_name": _string("acct-1", "acct-2"),
    "request_properties": _properties,
    "price_as_category": _string("cat-1", "cat-2"),
    "price_as_resource": _string("res-1", "res-2"),
    "resource_scope": _string("global", "datazone"),
    "proxy": st.booleans(),
    "log_prompt_and_response": st.booleans(),
}
# Pay-i's `track` decorator takes no use_case_step, price_as_* or resource_scope.
TRACK_FIELDS = (
    "use_case_name",
    "use_case_id",
    "use_case_version",
    "use_case_properties",
    "limit_ids",
    "user_id",
    "account_name",
    "request_properties",
    "proxy",
    "log_prompt_and_response",
)


@st.composite
def _some(
    draw: st.DrawFn, fields: Mapping[str, st.SearchStrategy[Any]], max_size: int, often: tuple[str, ...] = ()
) -> dict[str, Any]:
    """A few of `fields` with values, never most of them at once (unset fields are where inheritance
    shows); each field in `often` is there one time in two, whatever the others."""
    rest = tuple(name for name in fields if name not in often)
    names = draw(st.lists(st.sampled_from(rest), unique=True, max_size=max_size))
    names += [name for name in often if draw(st.booleans())]
    return {name: draw(fields[name]) for name in names}


# The SDK builds its global context from every context key of its config, as payi-web its root.
# The use case name is the field with the most rules behind it (ids, versions, steps, properties).
config_args = _some(FIELDS, max_size=6, often=("use_case_name",))
context_args = _some(FIELDS, max_size=3, often=("use_case_name",))
track_args = _some({name: FIELDS[name] for name in TRACK_FIELDS}, max_size=3, often=("use_case_name",))

_json_properties = _properties.map(lambda props: json.dumps(props, separators=(",", ":")))
EXPLICIT_VALUES: dict[str, st.SearchStrategy[str]] = {
    H.use_case_name: _string("alpha", "hdr-uc"),
    H.use_case_id: _string("hdr-id"),
    H.use_case_version: st.sampled_from(("", "0", "7")),
    H.use_case_step: _string("hdr-step"),
    H.use_case_properties: st.just("") | _json_properties,
    H.limit_ids: st.sampled_from(("", "l1", "lx", "lx,ly", "l1,lx")),
    H.user_id: _string("u1", "hdr-user"),
    H.account_name: _string("hdr-acct"),
    H.request_properties: st.just("") | _json_properties,
    H.price_as_category: _string("hdr-cat"),
    H.price_as_resource: _string("hdr-res"),
    H.resource_scope: _string("hdr-scope"),
    H.logging_disable: st.sampled_from(("", "True")),
}


def _spellings(name: str) -> st.SearchStrategy[str]:
    return st.sampled_from((name, name.lower(), name.upper(), name.swapcase()))


@st.composite
def extra_headers(draw: st.DrawFn) -> dict[str, str]:
    chosen = draw(_some(EXPLICIT_VALUES, max_size=4))
    if H.use_case_name not in chosen:
        # Deliberate difference (see the module docstring): no explicit id/version/step alone.
        for name in USE_CASE_DETAILS:
            chosen.pop(name, None)
    headers = {draw(_spellings(name)): value for name, value in chosen.items()}
    if draw(st.booleans()):
        headers[OTHER_HEADER] = draw(st.sampled_from(("t1", "t2")))
    return headers


_call: st.SearchStrategy[dict[str, str]] = st.just({}) | extra_headers()


def steps(depth: int = 0) -> st.SearchStrategy[list[Step]]:
    """A list of steps at nesting `depth`; scopes nest up to MAX_DEPTH deep."""
    call = _call.map(lambda headers: {"op": "call", "extra_headers": headers} if headers else {"op": "call"})
    if depth == MAX_DEPTH:
        return st.lists(call, min_size=1, max_size=3)
    children = st.deferred(lambda: steps(depth + 1))
    context = st.builds(
        lambda args, inner: {"op": "context", "args": args, "steps": inner}, context_args, children
    )
    track = st.builds(lambda args, inner: {"op": "track", "args": args, "steps": inner}, track_args, children)
    by_op = {"call": call, "context": context, "track": track}
    # One step in two is a scope; a scope without calls inside shows nothing, so every list has
    # at least one step.
    step = st.sampled_from(("call", "call", "context", "track")).flatmap(by_op.__getitem__)
    return st.lists(step, min_size=1, max_size=3)


def _labelled(config: dict[str, Any], tree: list[Step]) -> dict[str, Any]:
    count = 0

    def label(items: list[Step]) -> None:
        nonlocal count
        for step in items:
            if step["op"] == "call":
                count += 1
                step["label"] = f"c{count}"
            else:
                label(step["steps"])

    label(tree)
    return {"name": "generated", "config": config, "steps": tree}


generated_scenarios = st.builds(_labelled, config_args, steps())


# --- Tests ----------------------------------------------------------------------------------------


def _others(headers: Mapping[str, str]) -> dict[str, str]:
    return {name: value for name, value in headers.items() if not name.lower().startswith("xproxy-")}


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,  # the same examples on every run and machine
    database=None,
    # Trees of scopes take a few milliseconds to draw; a slow CI machine must not fail on that.
    suppress_health_check=[HealthCheck.too_slow],
)
@given(scenario=generated_scenarios)
def test_payi_web_matches_payi_sdk(payi_client: Payi, scenario: dict[str, Any]) -> None:
    sent_by_sdk = run_payi_sdk(scenario, payi_client)
    checked = {**scenario, "expected": expected_from_sdk(sent_by_sdk, _literal_use_case_ids(scenario))}

    seen = run_scenario(checked, lambda label, extra: payi_web.payi_headers(extra, proxy=True))

    compare(checked, seen)
    for (label, got), (_, want) in zip(seen, sent_by_sdk, strict=True):
        # compare() folds names to lower case: make sure that hid no header sent under two spellings.
        lowered = [name.lower() for name in got]
        assert len(lowered) == len(set(lowered)), f"{label}: a header sent twice: {sorted(got)}"
        assert _others(got) == _others(want), f"{label}: non-Pay-i headers must pass through untouched"


@pytest.mark.parametrize("scenario", scenarios(), ids=lambda s: s["name"])
def test_oracle_reproduces_recorded_scenarios(payi_client: Payi, scenario: dict[str, Any]) -> None:
    """The offline SDK set-up above gives what was recorded in inheritance.json with the same SDK version.

    Empty values are dropped from the SDK's output as compare() drops them from expectations.
    """
    sent_by_sdk = run_payi_sdk(scenario, payi_client)
    compare(scenario, [(label, {n: v for n, v in sent.items() if v != ""}) for label, sent in sent_by_sdk])
