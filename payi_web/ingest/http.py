"""The one HTTP call of ingest mode, and what its outcome means for delivery.

The HTTP library is httpx2 or httpx (the same API), imported only when ingest mode is
configured: the core's only runtime dependency is pydantic. One the app has imported already is
used (httpx2 first), so that ingest loads no second library: openai >= 3 and anthropic >= 1
bring httpx2, older SDKs httpx. Every request is sent with the `payi_web_bypass` extension, so
that a globally instrumented httpx neither adds the context's headers to it nor records it as
a call.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from types import ModuleType
from typing import Any, Final

__all__ = ["BYPASS", "IngestUnavailable", "Outcome", "load_http", "outcome_of_error", "outcome_of_response"]

BYPASS: Final = {"payi_web_bypass": True}
_LIBRARIES: Final = ("httpx2", "httpx")  # by preference
_MAX_MESSAGE: Final = 300


class IngestUnavailable(ImportError):
    """Ingest mode is configured but neither httpx nor httpx2 is installed."""


def load_http() -> ModuleType:
    """httpx2 or httpx, whichever is imported already, else installed (httpx2 first);
    `IngestUnavailable` (an ImportError) when neither is installed."""
    for name in _LIBRARIES:
        module = sys.modules.get(name)
        if module is not None:
            return module
    for name in _LIBRARIES:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise IngestUnavailable(
        "payi_web: Pay-i ingest mode (an API key is configured and proxy is not True) reports every "
        "call over HTTP and needs httpx or httpx2: pip install httpx (or payi-web[openai]); or send "
        "your calls through the Pay-i proxy with configure(defaults={'proxy': True})"
    )


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt to deliver an event came to."""

    ok: bool
    retryable: bool = False
    status: int | None = None
    error: str | None = None  # for logs and stats; never holds the API key
    retry_after: float | None = None  # seconds, from a Retry-After header


DELIVERED: Final = Outcome(ok=True, status=200)

# Statuses worth another attempt: Pay-i is busy, rate limiting, or (for now) broken.
_RETRY_STATUSES: Final = frozenset({408, 429})


def outcome_of_response(response: Any, api_key: str) -> Outcome:
    status: int = response.status_code
    if 200 <= status < 300:
        return DELIVERED if status == 200 else Outcome(ok=True, status=status)
    retryable = status >= 500 or status in _RETRY_STATUSES
    try:
        text = response.text
    except Exception:  # an undecodable body: the status says enough
        text = ""
    message = _redact(f"HTTP {status}: {error_message(text)}", api_key)
    retry_after = _retry_after(response.headers.get("retry-after")) if retryable else None
    return Outcome(ok=False, retryable=retryable, status=status, error=message, retry_after=retry_after)


def outcome_of_error(exc: Exception, http: ModuleType, api_key: str) -> Outcome:
    """Connection errors, timeouts and broken responses are retried; anything else is not."""
    retryable = isinstance(exc, (http.TimeoutException, http.TransportError)) and not isinstance(
        exc, (http.LocalProtocolError, http.UnsupportedProtocol)
    )
    detail = str(exc).strip()
    message = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    return Outcome(ok=False, retryable=retryable, error=_redact(message, api_key))


def error_message(text: str) -> str:
    """Pay-i's error message from a response body (`{"xproxy_error": {"code", "message"}}`), short."""
    text = text.strip()
    if not text:
        return "(no body)"
    try:
        payload = json.loads(text)
    except ValueError:
        return _short(text)
    if isinstance(payload, dict):
        error: dict[str, Any] = payload
        for key in ("xproxy_error", "error"):
            if isinstance(payload.get(key), dict):
                error = payload[key]
                break
        message = next(
            (error[key] for key in ("message", "detail", "title") if isinstance(error.get(key), str)), None
        )
        code = error.get("code")
        if message is not None:
            return _short(f"{code}: {message}" if isinstance(code, str) and code else message)
    return _short(text)


def _short(text: str) -> str:
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


def _redact(message: str, api_key: str) -> str:
    return message.replace(api_key, "<api key>") if api_key else message


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait, from `Retry-After` (seconds, or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    return max(0.0, seconds) if seconds == seconds else None  # NaN: ignored
