"""A request's scope, and streamed bodies that run inside it after the view has returned.

A streamed body is produced after the view returned, often after the request context ended:
it is bound (`bind_iterator`) so that every step runs with the request's frame (or the frame of
the `@track` function that returned it) current, and the deferred user and account it needs are
resolved before the request context ends.
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Generator, Iterable, Iterator
from typing import Any

from .._compat.flask import request_context
from ..integration import (
    Frame,
    FrameToken,
    Integration,
    bind_iterator,
    bind_result_type,
    exit_frame,
    is_bound,
    resolve_deferred,
    run_in_frame,
    unbind_result_type,
)


class _RequestScope:
    """One request's scope: entered in `before_request`, left at teardown or after its streamed body."""

    __slots__ = ("body", "end_pending", "frame", "producing", "token")

    def __init__(self, frame: Frame, token: FrameToken) -> None:
        self.frame = frame
        self.token: FrameToken | None = token
        # The body still to come after the view returned: wrapped, or a tracked generator as is.
        self.body: _ScopedBody | Iterator[Any] | None = None
        self.producing = 0  # > 0 while a step of the body runs (teardown may run inside one)
        self.end_pending = False

    def end(self) -> None:
        """Leave the scope (once): the context goes back to what it was before the request."""
        if self.producing:
            # Teardown inside a body step (a request context that the body re-entered and left):
            # the step restores its own token first, then ends the scope.
            self.end_pending = True
            return
        token, self.token = self.token, None
        if token is not None:
            exit_frame(token)

    def end_if_pending(self) -> None:
        if self.end_pending and not self.producing:
            self.end_pending = False
            self.end()

    def resolve_for_body(self) -> None:
        """The request context is about to end but the body is still to come: resolve what it needs."""
        body = self.body
        if body is None or self.producing:
            return
        if isinstance(body, _ScopedBody):
            if not body.finished:
                resolve_deferred(body.frame)
        else:
            # A tracked generator: its frame inherits the request's user and account.
            resolve_deferred(self.frame)


class _ScopedBody:
    """A response body whose every step (and close) runs with `frame` current.

    WSGI servers iterate the body after the view returned, outside the request context and
    outside the view's scopes; the stepper puts the scope back around each step. This object
    adds what WSGI and the request's scope need: `close()` always reaches the body, and a
    teardown run inside a step (`stream_with_context`) ends the request's scope after it.
    """

    __slots__ = ("_iterable", "_steps", "finished", "frame", "scope")

    def __init__(self, iterable: Iterable[Any], frame: Frame, scope: _RequestScope | None = None) -> None:
        self._iterable = iterable
        self._steps: Generator[Any, None, None] | None = None
        self.frame = frame
        self.scope = scope
        self.finished = False

    def __iter__(self) -> _ScopedBody:
        return self

    def __next__(self) -> Any:
        scope = self.scope
        if scope is not None:
            scope.producing += 1
        try:
            steps = self._steps
            if steps is None:
                steps = self._steps = bind_iterator(self._iterable, self.frame)
            return next(steps)
        except BaseException:
            self.finished = True
            raise
        finally:
            if scope is not None:
                scope.producing -= 1
                if scope.end_pending:
                    scope.end_if_pending()

    def close(self) -> None:
        scope = self.scope
        self.finished = True
        if scope is not None:
            scope.producing += 1
        try:
            steps = self._steps
            if steps is not None and inspect.getgeneratorstate(steps) == inspect.GEN_SUSPENDED:
                steps.close()  # closes the body in the frame its steps left current
            else:  # not started, or ended: WSGI still wants the body's close() called
                close = getattr(self._iterable, "close", None)
                if close is not None:
                    run_in_frame(self.frame, close)
        finally:
            if scope is not None:
                scope.producing -= 1
                scope.end_if_pending()


def _bind_response(response: Any, frame: Frame) -> Any:
    # `@track` on a function returning a streamed response: the body keeps that function's scope.
    body = getattr(response, "response", None)
    if (
        body is not None
        and getattr(response, "is_streamed", False)
        and not getattr(response, "direct_passthrough", False)
        and not isinstance(body, _ScopedBody)
        and not is_bound(body)
    ):
        response.response = _ScopedBody(body, frame)
    return response


def _bind_generator(generator: Any, frame: Frame) -> Any:
    # `@track` on a view returning a generator (or stream_with_context(...)): Flask streams it
    # later. Only inside a Flask request: elsewhere a tracked function's generator is left as is.
    if request_context() is None:
        return generator
    return bind_iterator(generator, frame)


def _response_types() -> set[type]:
    import flask
    import werkzeug.wrappers

    return {flask.Response, werkzeug.wrappers.Response}


class FlaskIntegration(Integration):
    """Set up by `PayiTracking.init_app`: a tracked view's streamed response or generator keeps its scope."""

    identifier = "flask"
    library = "flask"
    min_version = (3, 0)

    @classmethod
    def setup_once(cls) -> None:
        for kind in _response_types():
            bind_result_type(kind, _bind_response)
        bind_result_type(types.GeneratorType, _bind_generator)

    @classmethod
    def teardown_once(cls) -> None:
        for kind in _response_types():
            unbind_result_type(kind, _bind_response)
        unbind_result_type(types.GeneratorType, _bind_generator)

    @staticmethod
    def bind_response_class(kind: type) -> None:
        """An app's own `response_class` keeps the scope too."""
        bind_result_type(kind, _bind_response)
