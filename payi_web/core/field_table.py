"""The one table of the tracking-context fields, from which everything payi-web does with a field is derived.

Each row (`FieldSpec`) says, for one field: its kind (how an argument is validated, and its
types as an argument and in a snapshot), how a scope inherits it (README "Inheritance rules"),
its `xProxy-*` header and how the value is encoded there, how an ingest event reports it, its
Django/Flask setting (a context default) and whether the ledger stores it. Derived from it:
validation (`_fields`), `Frame`'s slots, the inheritance and snapshots (`context`), the headers
and their precedence (`headers`), the settings keys (`settings`), the ledger's columns and rows
(`ledger.schema`) and the ingest headers and body (`ingest.event`).

Why a table of plain data rather than `Annotated[..., FieldSpec(...)]` metadata on
`TrackingContext`: four declarations must stay static classes, because type checkers read
them and cannot read a runtime table: `TrackingContext` (the public pydantic model),
`TrackFields` (the TypedDict that types `track(**fields)`), `PayiSettings` (the settings
model) and `Frame`'s attribute annotations. Metadata on one of them would leave the others to
be kept in step all the same, would put the wire format and the ledger into the signature of
the public model (what users see in their editor and docs), and would tie the table to
pydantic's metadata API. So the table stands alone, and tests/test_field_table.py checks,
field by field and type by type, that the static declarations agree with it.

Adding a field: a row here (in the order of `TrackingContext`), the field in the static
declarations (the test names what is missing), and, when the ledger stores it, a new schema
version (`ledger_since`, see ledger/schema.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Final

from .deferred import Deferred

__all__ = [
    "BOOL",
    "BY_NAME",
    "FIELDS",
    "FIELD_NAMES",
    "IDS",
    "INT",
    "LAZY_STR",
    "PROPS",
    "STR",
    "USE_CASE_FIELDS",
    "Encoding",
    "FieldSpec",
    "Ingest",
    "Kind",
    "PayiHeaders",
    "Rule",
]


class PayiHeaders:
    """The header names Pay-i reads (matched case-insensitively)."""

    USE_CASE_NAME: Final = "xProxy-UseCase-Name"
    USE_CASE_ID: Final = "xProxy-UseCase-ID"
    USE_CASE_VERSION: Final = "xProxy-UseCase-Version"
    USE_CASE_STEP: Final = "xProxy-UseCase-Step"
    USE_CASE_PROPERTIES: Final = "xProxy-UseCase-Properties"
    LIMIT_IDS: Final = "xProxy-Limit-IDs"
    USER_ID: Final = "xProxy-User-ID"
    ACCOUNT_NAME: Final = "xProxy-Account-Name"
    REQUEST_PROPERTIES: Final = "xProxy-Request-Properties"
    PRICE_AS_CATEGORY: Final = "xProxy-PriceAs-Category"
    PRICE_AS_RESOURCE: Final = "xProxy-PriceAs-Resource"
    RESOURCE_SCOPE: Final = "xProxy-Resource-Scope"
    LOGGING_DISABLE: Final = "xProxy-Logging-Disable"
    API_KEY: Final = "xProxy-api-key"


@dataclass(frozen=True, eq=False)
class Kind:
    """The values a field takes: how an argument is validated (see `_fields.validate_fields`)."""

    name: str
    argument_type: object  # in `TrackFields`, and as a setting
    public_type: object  # in `TrackingContext`


STR: Final = Kind("str", str | None, str | None)
LAZY_STR: Final = Kind("str, or a Deferred resolved on first use", str | Deferred | None, str | None)
INT: Final = Kind("int from 0 to 2**63 - 1", int | None, int | None)
BOOL: Final = Kind("bool", bool | None, bool | None)
IDS: Final = Kind("list of non-empty str without a comma", list[str] | None, tuple[str, ...] | None)
PROPS: Final = Kind("dict of str to str or None", dict[str, str | None] | None, dict[str, str | None] | None)


class Rule(Enum):
    """How a scope's value follows from its argument and its parent's value. Whatever the rule,
    a field not given (or given None) keeps the parent's value."""

    NEW_INSTANCE = "use case name: the parent's instance id for the same name, a new one for a new name"
    LATEST = "this value; an empty str unsets (False and 0 are values)"
    UNION = "the parent's ids, then the new ones, no duplicates; [] unsets"
    MERGE = "the parent's properties updated with these; {} unsets"


class Encoding(Enum):
    """How a frame's value becomes its header's text; a value that gives no text sends no header."""

    TEXT = "as it is"
    NUMBER = "in decimal"
    COMMA_LIST = "comma-joined"
    JSON = "compact JSON, base64-encoded in proxy mode"
    DISABLE_FLAG = "'True' when the value is False"


class Ingest(Enum):
    """How an ingest event reports a field, from the call's headers (where the caller's won)."""

    HEADER = "as its header"
    BODY_PROPERTIES = "its header's JSON object, in the body under `body_key`"
    BODY_REPLACES = "its header's value, in place of the body's `body_key`"
    NOT_REPORTED = "not at all"


@dataclass(frozen=True)
class FieldSpec:
    """One context field."""

    name: str
    kind: Kind
    rule: Rule
    header: str | None  # its xProxy-* header; None: never sent
    encoding: Encoding | None  # with a header: how its value is sent
    ingest: Ingest = Ingest.HEADER
    body_key: str | None = None  # with BODY_*: the key of the ingest body
    setting: str | None = None  # a context default as a setting: Django's PAYI[key], Flask's PAYI_<key>
    use_case: bool = False  # exists only while a use case name is in effect
    # The ledger schema version whose migration added the field's column of `calls` (named as
    # the field; the kind gives its type); None: not stored.
    ledger_since: int | None = 1


H = PayiHeaders

FIELDS: Final[tuple[FieldSpec, ...]] = (
    FieldSpec(
        "use_case_name",
        STR,
        Rule.NEW_INSTANCE,
        H.USE_CASE_NAME,
        Encoding.TEXT,
        setting="USE_CASE_NAME",
        use_case=True,
    ),
    FieldSpec("use_case_id", STR, Rule.LATEST, H.USE_CASE_ID, Encoding.TEXT, use_case=True),
    FieldSpec(
        "use_case_version",
        INT,
        Rule.LATEST,
        H.USE_CASE_VERSION,
        Encoding.NUMBER,
        setting="USE_CASE_VERSION",
        use_case=True,
    ),
    FieldSpec("use_case_step", STR, Rule.LATEST, H.USE_CASE_STEP, Encoding.TEXT, use_case=True),
    FieldSpec(
        "use_case_properties",
        PROPS,
        Rule.MERGE,
        H.USE_CASE_PROPERTIES,
        Encoding.JSON,
        Ingest.BODY_PROPERTIES,
        body_key="use_case_properties",
        setting="USE_CASE_PROPERTIES",
        use_case=True,
    ),
    FieldSpec("limit_ids", IDS, Rule.UNION, H.LIMIT_IDS, Encoding.COMMA_LIST, setting="LIMIT_IDS"),
    FieldSpec("user_id", LAZY_STR, Rule.LATEST, H.USER_ID, Encoding.TEXT),
    FieldSpec("account_name", LAZY_STR, Rule.LATEST, H.ACCOUNT_NAME, Encoding.TEXT),
    FieldSpec(
        "request_properties",
        PROPS,
        Rule.MERGE,
        H.REQUEST_PROPERTIES,
        Encoding.JSON,
        Ingest.BODY_PROPERTIES,
        body_key="properties",
        setting="REQUEST_PROPERTIES",
    ),
    FieldSpec(
        "price_as_category",
        STR,
        Rule.LATEST,
        H.PRICE_AS_CATEGORY,
        Encoding.TEXT,
        Ingest.BODY_REPLACES,
        body_key="category",
        setting="PRICE_AS_CATEGORY",
    ),
    FieldSpec(
        "price_as_resource",
        STR,
        Rule.LATEST,
        H.PRICE_AS_RESOURCE,
        Encoding.TEXT,
        Ingest.BODY_REPLACES,
        body_key="resource",
        setting="PRICE_AS_RESOURCE",
    ),
    FieldSpec("resource_scope", STR, Rule.LATEST, H.RESOURCE_SCOPE, Encoding.TEXT, setting="RESOURCE_SCOPE"),
    # The proxy mode is how a call travels, not an attribution: no header, nothing to report.
    FieldSpec("proxy", BOOL, Rule.LATEST, None, None, Ingest.NOT_REPORTED, setting="PROXY"),
    FieldSpec(
        "log_prompt_and_response",
        BOOL,
        Rule.LATEST,
        H.LOGGING_DISABLE,
        Encoding.DISABLE_FLAG,
        setting="LOG_PROMPT_AND_RESPONSE",
    ),
)

FIELD_NAMES: Final[tuple[str, ...]] = tuple(spec.name for spec in FIELDS)
BY_NAME: Final[dict[str, FieldSpec]] = {spec.name: spec for spec in FIELDS}
USE_CASE_FIELDS: Final[tuple[FieldSpec, ...]] = tuple(spec for spec in FIELDS if spec.use_case)
