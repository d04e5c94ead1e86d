"""An LLM gateway on 127.0.0.1 that refuses large request headers, as real gateways do.

It answers like `FakeProvider` (whose `received` keeps what it accepted), over real HTTP/1.1, so
that the client's own header checks (h11's) run; a request whose headers, counted as
`name: value` lines, exceed `limit` bytes gets `431 Request Header Fields Too Large` (nginx
and most load balancers refuse at 8 KB or a little more).
"""

from __future__ import annotations

import base64
import json
from typing import Any

from payi_web.fake_provider import FakeProvider

HEADER_LIMIT = 8192


class StrictGateway:
    def __init__(self, provider: FakeProvider, limit: int = HEADER_LIMIT) -> None:
        self.provider = provider
        provider.max_header_bytes = limit
        self.url = provider.serve()

    @property
    def refused(self) -> list[int]:
        """The header sizes of the requests refused."""
        return self.provider.refused_header_sizes

    def close(self) -> None:
        self.provider.close()


def sent_properties(value: str) -> dict[str, Any]:
    """A property header as sent in proxy mode (base64 of JSON), decoded."""
    data: dict[str, Any] = json.loads(base64.b64decode(value))
    return data
