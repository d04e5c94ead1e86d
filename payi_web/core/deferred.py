"""`Deferred`: a context field's value computed on first use, at most once (a request's user id, say)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from .log import warn_once

__all__ = ["Deferred"]


class Deferred:
    """A `user_id` or `account_name` computed on first use, at most once, e.g. from the request's user.

    Framework layers seed a request's scope with these so that a request making no GenAI call
    costs no session or database query. A resolver that raises, or returns something other
    than a str or None, is logged once (with the traceback) and the field is left unset: the
    request and its GenAI calls go on. `aresolve`, when given, is used where the call runs on
    an event loop (e.g. Django's `request.auser()`).
    """

    __slots__ = (
        "_aresolve",
        "_done",
        "_lock",
        "_name",
        "_pending",
        "_pending_task",
        "_resolve",
        "_resolving",
        "_value",
    )

    def __init__(
        self,
        resolve: Callable[[], object],
        *,
        aresolve: Callable[[], Awaitable[object]] | None = None,
        name: str = "resolver",
    ) -> None:
        # Dropped once settled: they hold the request (its user, session, app context), which must
        # not outlive it in a frame that a streamed body, a record or a worker thread keeps.
        self._resolve: Callable[[], object] | None = resolve
        self._aresolve: Callable[[], Awaitable[object]] | None = aresolve
        self._name = name
        self._value: str | None = None
        self._done = False
        # Re-entrant: a resolver that reads the context in its own thread sees the field unset.
        self._lock = threading.RLock()
        self._resolving = False
        # The async resolution under way (awaited in `_pending_task`), which concurrent calls wait for.
        self._pending: asyncio.Future[None] | None = None
        self._pending_task: asyncio.Task[Any] | None = None

    @property
    def settled(self) -> bool:
        """Resolved (or failed): `get()` returns at once."""
        return self._done

    def __repr__(self) -> str:
        state = repr(self._value) if self._done else "unresolved"
        return f"Deferred({self._name}: {state})"

    def _settle(self, value: object) -> None:
        if value is not None and not isinstance(value, str):
            warn_once(
                f"resolver-type:{self._name}",
                "payi_web: %s returned %s, not str or None; the field is left unset",
                self._name,
                type(value).__name__,
            )
            value = None
        self._value = value or None
        self._done = True
        self._resolve = self._aresolve = None
        self._pending_task = None

    def _failed(self) -> None:
        warn_once(
            f"resolver:{self._name}",
            "payi_web: %s raised; the field is left unset",
            self._name,
            exc_info=True,
        )
        self._value = None
        self._done = True
        self._resolve = self._aresolve = None
        self._pending_task = None

    def get(self) -> str | None:
        if not self._done:
            with self._lock:
                if not self._done:
                    if self._resolving:
                        return None  # the resolver itself asked (e.g. via get_context()): not known yet
                    resolve = self._resolve
                    if resolve is None:  # settled meanwhile, by an async resolution
                        return self._value
                    self._resolving = True
                    try:
                        value = resolve()
                    except Exception:
                        if not self._done:
                            self._failed()
                    else:
                        if not self._done:
                            self._settle(value)
                    finally:
                        self._resolving = False
        return self._value

    async def aget(self) -> str | None:
        while not self._done:
            aresolve = self._aresolve
            if aresolve is None:
                return self.get()
            pending = self._pending
            if pending is None or pending.get_loop() is not asyncio.get_running_loop():
                return await self._aresolve_here(aresolve)
            resolver = self._pending_task
            if resolver is not None and resolver is asyncio.current_task():
                return None  # the resolver itself asked (e.g. via get_context()): not known yet
            # Another call of the request is resolving it: wait for that one, whatever its end
            # (if it was cancelled, the loop above resolves it here).
            await asyncio.wait((pending,))
        return self._value

    async def _aresolve_here(self, aresolve: Callable[[], Awaitable[object]]) -> str | None:
        # Awaited in place, not in a task of its own: a task and a shield cost two more turns of
        # the event loop on every request's first call. Concurrent calls wait on `_pending`.
        pending = self._pending = asyncio.get_running_loop().create_future()
        self._pending_task = asyncio.current_task()
        try:
            value = await aresolve()
        except Exception:
            if not self._done:
                self._failed()
        except BaseException:  # cancelled: a waiting call resolves it instead
            if self._pending is pending:
                self._pending = self._pending_task = None
            raise
        else:
            if not self._done:
                self._settle(value)
        finally:
            pending.set_result(None)
        return self._value
