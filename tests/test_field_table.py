"""The field table (payi_web/_field_table.py) and the static declarations that must agree with it.

`TrackingContext`, `TrackFields`, `PayiSettings` and `Frame`'s annotations are static classes
for type checkers; everything else is derived from the table at import. These tests name the
field and the declaration that fell out of step.
"""

from __future__ import annotations

import sqlite3
import typing
from pathlib import Path
from typing import Any

import pytest

from payi_web import TrackingContext
from payi_web.core.context import Frame, LazyId, Props
from payi_web.core.deferred import Deferred
from payi_web.core.field_table import (
    BOOL,
    FIELD_NAMES,
    FIELDS,
    IDS,
    INT,
    LAZY_STR,
    PROPS,
    STR,
    FieldSpec,
    Kind,
)
from payi_web.core.fields import TrackFields
from payi_web.ledger import schema
from payi_web.settings import CONTEXT_DEFAULT_KEYS, PayiSettings, SettingsError, load_settings

by_name = pytest.mark.parametrize("spec", FIELDS, ids=FIELD_NAMES)


def test_the_static_declarations_list_the_tables_fields_in_its_order() -> None:
    assert tuple(TrackingContext.model_fields) == FIELD_NAMES
    assert tuple(typing.get_type_hints(TrackFields)) == FIELD_NAMES
    frame_fields = [name for name in typing.get_type_hints(Frame) if name in FIELD_NAMES]
    assert tuple(frame_fields) == FIELD_NAMES
    assert set(FIELD_NAMES) <= set(Frame.__slots__)


@by_name
def test_a_snapshot_has_the_fields_public_type(spec: FieldSpec) -> None:
    field = TrackingContext.model_fields[spec.name]
    assert field.annotation == spec.kind.public_type
    assert field.default is None


@by_name
def test_an_argument_has_the_fields_argument_type(spec: FieldSpec) -> None:
    assert typing.get_type_hints(TrackFields)[spec.name] == spec.kind.argument_type


@by_name
def test_a_frame_holds_the_field_as_its_kind_and_rule_say(spec: FieldSpec) -> None:
    expected: Any = spec.kind.public_type
    if spec.kind is PROPS:
        expected = Props | None  # shared by inheritors, with its encodings
    elif spec.kind is LAZY_STR:
        expected = str | Deferred | None
    if spec.name == "use_case_id":
        expected = str | LazyId | None  # a new use case's instance id, drawn on first use
    assert typing.get_type_hints(Frame)[spec.name] == expected


@by_name
def test_a_context_default_setting_has_the_fields_argument_type(spec: FieldSpec) -> None:
    if spec.setting is None:
        assert spec.name not in CONTEXT_DEFAULT_KEYS.values()
        return
    field = PayiSettings.model_fields[spec.setting]
    assert field.annotation == spec.kind.argument_type and field.default is None
    assert CONTEXT_DEFAULT_KEYS[spec.setting] == spec.name


# A valid value of each kind, as a setting gives it.
_SAMPLES: dict[Kind, Any] = {STR: "v", LAZY_STR: "v", INT: 3, BOOL: False, IDS: ["a", "b"], PROPS: {"k": "v"}}


@pytest.mark.parametrize("spec", [spec for spec in FIELDS if spec.setting], ids=lambda spec: spec.setting)
def test_a_context_default_setting_sets_its_field_and_a_bad_one_is_named(spec: FieldSpec) -> None:
    value = _SAMPLES[spec.kind]
    assert load_settings({spec.setting: value}).context_defaults() == {spec.name: value}
    with pytest.raises(SettingsError) as caught:
        load_settings({spec.setting: object()})
    assert caught.value.key == spec.setting


# The `calls` table as schema version 1 made it: files written since must keep working.
_CALLS_V1 = [
    ("id", "INTEGER", 0, 1),
    ("timestamp", "TEXT", 1, 0),
    ("category", "TEXT", 0, 0),
    ("model", "TEXT", 0, 0),
    ("method", "TEXT", 0, 0),
    ("url", "TEXT", 0, 0),
    ("status", "INTEGER", 0, 0),
    ("latency_ms", "REAL", 0, 0),
    ("time_to_first_token_ms", "REAL", 0, 0),
    ("streamed", "INTEGER", 0, 0),
    ("proxied", "INTEGER", 0, 0),
    ("failed", "INTEGER", 1, 0),
    ("response_id", "TEXT", 0, 0),
    ("use_case_name", "TEXT", 0, 0),
    ("use_case_id", "TEXT", 0, 0),
    ("use_case_version", "INTEGER", 0, 0),
    ("use_case_step", "TEXT", 0, 0),
    ("use_case_properties", "TEXT", 0, 0),
    ("limit_ids", "TEXT", 0, 0),
    ("user_id", "TEXT", 0, 0),
    ("account_name", "TEXT", 0, 0),
    ("request_properties", "TEXT", 0, 0),
    ("price_as_category", "TEXT", 0, 0),
    ("price_as_resource", "TEXT", 0, 0),
    ("resource_scope", "TEXT", 0, 0),
    ("proxy", "INTEGER", 0, 0),
    ("log_prompt_and_response", "INTEGER", 0, 0),
    ("input_tokens", "INTEGER", 0, 0),
    ("output_tokens", "INTEGER", 0, 0),
    ("text_input_tokens", "INTEGER", 0, 0),
    ("text_output_tokens", "INTEGER", 0, 0),
    ("cache_read_tokens", "INTEGER", 0, 0),
    ("cache_write_tokens", "INTEGER", 0, 0),
    ("reasoning_tokens", "INTEGER", 0, 0),
    ("units", "TEXT", 0, 0),
    ("estimated_cost_usd", "REAL", 0, 0),
]


def test_the_ledger_schema_derived_from_the_table_is_version_1s(tmp_path: Path) -> None:
    assert schema.SCHEMA_VERSION == 1
    conn = schema.connect(str(tmp_path / "ledger.sqlite3"), busy_timeout=1)
    try:
        assert schema.migrate(conn) == 1
        columns = [
            (name, kind, notnull, pk)
            for _, name, kind, notnull, _, pk in conn.execute("PRAGMA table_info(calls)")
        ]
        indexes = [row[1] for row in conn.execute("PRAGMA index_list(calls)")]
    finally:
        conn.close()
    assert columns == _CALLS_V1
    assert indexes == ["calls_timestamp"]
    assert tuple(name for name, *_ in _CALLS_V1[1:]) == schema.COLUMNS


def test_every_stored_field_is_stored_by_a_migration_there_is() -> None:
    for spec in FIELDS:
        assert spec.ledger_since is None or 1 <= spec.ledger_since <= schema.SCHEMA_VERSION, spec.name
    # A column the table names is in the file that migrations make.
    conn = sqlite3.connect(":memory:", isolation_level=None)
    try:
        schema.migrate(conn)
        made = {row[1] for row in conn.execute("PRAGMA table_info(calls)")}
    finally:
        conn.close()
    assert {spec.name for spec in FIELDS if spec.ledger_since is not None} <= made
