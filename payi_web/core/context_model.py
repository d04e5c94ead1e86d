"""`TrackingContext`: the effective tracking context as users see it, an immutable pydantic model."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["TrackingContext"]


class TrackingContext(BaseModel):
    """The effective tracking context at one point of the program, as `get_context()` returns it."""

    # Static, for type checkers and users' editors; tests/test_field_table.py keeps it in step
    # with the field table (payi_web/_field_table.py), field by field, in order.
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    use_case_name: str | None = None
    use_case_id: str | None = None
    use_case_version: int | None = None
    use_case_step: str | None = None
    use_case_properties: dict[str, str | None] | None = None
    limit_ids: tuple[str, ...] | None = None
    user_id: str | None = None
    account_name: str | None = None
    request_properties: dict[str, str | None] | None = None
    price_as_category: str | None = None
    price_as_resource: str | None = None
    resource_scope: str | None = None
    proxy: bool | None = None
    log_prompt_and_response: bool | None = None
