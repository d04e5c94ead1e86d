"""Every private attribute of another library that payi-web reads (`payi_web._compat`) is still
there in the installed release: a release that drops one fails here, loudly, by name."""

from __future__ import annotations

import inspect
from typing import Any

import httpx
import httpx2
import pytest

from payi_web._compat import MissingPrivate
from payi_web._compat.httpx import send_single_request


@pytest.mark.parametrize("lib", [httpx, httpx2], ids=lambda lib: lib.__name__)
def test_httpx_clients_send_each_request_through_send_single_request(lib: Any) -> None:
    for client_class in (lib.Client, lib.AsyncClient):
        method = send_single_request(client_class)
        assert list(inspect.signature(method).parameters) == ["self", "request"]
    assert inspect.iscoroutinefunction(send_single_request(lib.AsyncClient))


def test_a_missing_private_attribute_is_named() -> None:
    with pytest.raises(MissingPrivate, match="_send_single_request"):
        send_single_request(object)


@pytest.mark.parametrize("lib", [httpx, httpx2], ids=lambda lib: lib.__name__)
def test_headers_keep_their_entries_where_payi_web_reads_and_extends_them(lib: Any) -> None:
    from payi_web._compat.httpx import add_headers, has_payi_headers

    headers = lib.Headers({"Accept": "application/json"})
    entries = getattr(headers, "_list", None)
    assert isinstance(entries, list) and entries[0] == (b"Accept", b"accept", b"application/json")
    assert getattr(headers, "_encoding", "missing") in (None, "ascii", "utf-8")
    assert not has_payi_headers(headers)
    add_headers(headers, {"xProxy-User-ID": "42"})
    assert headers["xproxy-user-id"] == "42" and has_payi_headers(headers)
    assert headers.raw == [(b"Accept", b"application/json"), (b"xProxy-User-ID", b"42")]


@pytest.mark.parametrize("lib", [httpx, httpx2], ids=lambda lib: lib.__name__)
def test_bodies_given_whole_can_be_replaced_where_payi_web_replaces_them(lib: Any) -> None:
    from payi_web._compat.httpx import replace_body, replace_content

    request = lib.Request("POST", "http://127.0.0.1:9/v1/chat/completions", content=b'{"a":1}')
    assert type(request.stream).__name__ == "ByteStream" and hasattr(request, "_content")
    assert replace_body(request, b'{"a":2,"b":3}')
    assert request.content == b'{"a":2,"b":3}' and request.headers["content-length"] == "13"
    assert b"".join(request.stream) == b'{"a":2,"b":3}'

    response = lib.Response(200, content=b"data: 1\n\n")
    assert response.is_stream_consumed and hasattr(response, "_content")
    replace_content(response, b"data: 2\n\n")
    assert response.content == b"data: 2\n\n" and list(response.iter_bytes()) == [b"data: 2\n\n"]
