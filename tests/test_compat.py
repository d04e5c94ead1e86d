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
