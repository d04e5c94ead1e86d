"""A nested value where a str is expected is refused with TypeError, however deep it is nested."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import payi_web
from payi_web import track, track_context

DEPTH = 100_000  # far beyond the interpreter's recursion limit


def nested_dict(depth: int = DEPTH) -> dict[str, Any]:
    root: dict[str, Any] = {}
    inner = root
    for _ in range(depth):
        inner["k"] = {}
        inner = inner["k"]
    return root


def nested_list(depth: int = DEPTH) -> list[Any]:
    root: list[Any] = []
    inner = root
    for _ in range(depth):
        inner.append([])
        inner = inner[0]
    return root


def enter(fields: dict[str, Any]) -> None:
    with track_context(**fields):
        pass


def decorate(fields: dict[str, Any]) -> None:
    track(**fields)(lambda: None)


def configure(fields: dict[str, Any]) -> None:
    payi_web.configure(defaults=fields)


DECLARATIONS: list[Callable[[dict[str, Any]], None]] = [enter, decorate, configure]


@pytest.mark.parametrize("declare", DECLARATIONS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("field", ["request_properties", "use_case_properties"])
def test_a_deeply_nested_property_value_is_a_type_error(
    declare: Callable[[dict[str, Any]], None], field: str
) -> None:
    with pytest.raises(TypeError, match=rf"{field}\['deep'\] must be str or None, got dict"):
        declare({field: {"ok": "v", "deep": nested_dict()}})


@pytest.mark.parametrize("declare", DECLARATIONS, ids=lambda f: f.__name__)
@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"limit_ids": ["cap", nested_list()]}, "limit_ids items must be str, got list"),
        ({"limit_ids": nested_dict()}, "limit_ids must be a list of str, got dict"),
        ({"user_id": nested_list()}, "user_id must be str, got list"),
        ({"use_case_name": nested_dict()}, "use_case_name must be str, got dict"),
    ],
)
def test_other_deeply_nested_values_are_type_errors(
    declare: Callable[[dict[str, Any]], None], fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(TypeError, match=message):
        declare(fields)


def test_the_message_shows_the_value_shortened() -> None:
    with pytest.raises(TypeError) as raised:
        enter({"request_properties": {"deep": nested_dict()}})
    assert "{'k': {'k': {...}}}" in str(raised.value)
    assert len(str(raised.value)) < 200
    with pytest.raises(TypeError) as raised:
        enter({"request_properties": {"long": ["x" * 100_000]}})
    assert len(str(raised.value)) < 300


def test_a_value_whose_repr_fails_is_still_a_type_error() -> None:
    class Unprintable:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    with pytest.raises(TypeError, match=r"user_id must be str, got Unprintable <Unprintable"):
        enter({"user_id": Unprintable()})
