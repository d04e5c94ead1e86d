"""`DjangoIntegration`: what payi-web sets up in a Django process, once."""

from __future__ import annotations

from typing import Any

from ..integration import Frame, Integration, bind_result_type, unbind_result_type

__all__ = ["DjangoIntegration"]


def _bind_streaming_response(response: Any, frame: Frame) -> Any:
    from ._streaming import bind_response

    return bind_response(response, frame)


class DjangoIntegration(Integration):
    """Set up by the app's `ready()` and by `PayiMiddleware` (whichever comes first).

    A tracked view returning a `StreamingHttpResponse` keeps its scope for the content produced
    after it returned.
    """

    identifier = "django"
    library = "django"
    min_version = (4, 2)

    @classmethod
    def setup_once(cls) -> None:
        from django.http import StreamingHttpResponse

        bind_result_type(StreamingHttpResponse, _bind_streaming_response)

    @classmethod
    def teardown_once(cls) -> None:
        from django.http import StreamingHttpResponse

        unbind_result_type(StreamingHttpResponse, _bind_streaming_response)
