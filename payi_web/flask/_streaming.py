"""A request's scope, and streamed bodies that run inside it after the view has returned.

A streamed body is produced after the view returned, often after the request context ended:
it is wrapped so that every step runs with the request's frame (or the frame of the `@track`
function that returned it) current, and the deferred user and account it needs are resolved
before the request context ends.
"""

from __future__ import annotations

import types
from collections.abc import Iterable, Iterator
from typing import Any

from flask import Flask, Response
from flask.globals import _cv_request

from .._fields import Deferred
from ..context import Frame, current_var
from ..tracking import _drive, _restore, bind_result_type, runs_in_its_own_scope


class _RequestScope:
    """One request's scope: entered in `before_request`, left at teardown or after its streamed body."""

    __slots__ = ("body", "end_pending", "frame", "producing", "token")

    def __init__(self, frame: Frame, token: Any) -> None:
        self.frame = frame
        self.token = token
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
            _restore(token)

    def resolve_for_body(self) -> None:
        """The request context is about to end but the body is still to come: resolve what it needs."""
        body = self.body
        if body is None or self.producing:
            return
        if isinstance(body, _ScopedBody):
            if body.finished:
                return
            frame = body.frame.resolved()
        else:
            # A tracked generator: its frame inherits the request's user and account.
            frame = self.frame.resolved()
        for value in (frame.user_id, frame.account_name):
            if isinstance(value, Deferred):
                value.get()


class _ScopedBody:
    """A response body whose every step (and close) runs with `frame` current.

    WSGI servers iterate the body after the view returned, outside the request context and
    outside the view's scopes; this puts the scope back around each step.
    """

    __slots__ = ("_iterable", "_iterator", "finished", "frame", "scope")

    def __init__(self, iterable: Iterable[Any], frame: Frame, scope: _RequestScope | None = None) -> None:
        self._iterable = iterable
        self._iterator: Iterator[Any] | None = None
        self.frame = frame
        self.scope = scope
        self.finished = False

    def __iter__(self) -> _ScopedBody:
        return self

    def __next__(self) -> Any:
        # Runs once per chunk of every streamed body: the restore and the step's end are inlined.
        scope = self.scope
        token = current_var.set(self.frame)
        if scope is not None:
            scope.producing += 1
        try:
            iterator = self._iterator
            if iterator is None:
                iterator = self._iterator = iter(self._iterable)
            return next(iterator)
        except BaseException:
            self.finished = True
            raise
        finally:
            # A scope the step entered (a `with track_context()` around a yield) stays current
            # for the steps that follow, as in a tracked generator.
            self.frame = current_var.get() or self.frame
            current_var.reset(token)  # set and reset in one call: always the same Context
            if scope is not None:
                scope.producing -= 1
                if scope.end_pending:
                    _end_if_pending(scope)

    def close(self) -> None:
        scope = self.scope
        self.finished = True
        token = current_var.set(self.frame)
        if scope is not None:
            scope.producing += 1
        try:
            for target in (self._iterable, self._iterator):
                close = getattr(target, "close", None)
                if close is not None:
                    close()
                    break
        finally:
            _restore(token)
            if scope is not None:
                scope.producing -= 1
                _end_if_pending(scope)


def _end_if_pending(scope: _RequestScope) -> None:
    if scope.end_pending and not scope.producing:
        scope.end_pending = False
        scope.end()


def _bind_response(response: Any, frame: Frame) -> Any:
    # `@track` on a function returning a streamed response: the body keeps that function's scope.
    body = getattr(response, "response", None)
    if (
        body is not None
        and getattr(response, "is_streamed", False)
        and not getattr(response, "direct_passthrough", False)
        and not isinstance(body, _ScopedBody)
        and not runs_in_its_own_scope(body)
    ):
        response.response = _ScopedBody(body, frame)
    return response


def _bind_generator(generator: Any, frame: Frame) -> Any:
    # `@track` on a view returning a generator (or stream_with_context(...)): Flask streams it
    # later. Only inside a Flask request: elsewhere a tracked function's generator is left as is.
    if _cv_request.get(None) is None:
        return generator
    return _drive(generator, frame)


def _register_result_types(app: Flask) -> None:
    """Teach `@track` that a streamed response or a generator it returns keeps its scope (idempotent)."""
    import werkzeug.wrappers

    kinds: set[type] = {Response, werkzeug.wrappers.Response, app.response_class}
    for kind in kinds:
        bind_result_type(kind, _bind_response)
    bind_result_type(types.GeneratorType, _bind_generator)
