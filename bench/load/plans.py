"""What the apps and the harness agree on: the call kinds, the plans, the prompt, the figures' names.

A request to `/chat/<plan>/` makes one GenAI call per letter of its plan, in order:

- `a`: an `await`ed call of an `AsyncOpenAI` client (async servers only);
- `y`: a call of a sync `OpenAI` client in the request's thread (under ASGI: in a worker thread,
  through `sync_to_async`);
- `t`: a sync call submitted to a `ThreadPoolExecutor` inside the view (the context carried by
  `bind_context`, or by `patch_thread_pool()` in the Flask app);
- `s`: a streamed call, made while the server sends the response body (always last).

Each call's prompt is `rid=<request id> call=<kind>`, written by the view from the HTTP request
(not from the tracking context); the view's use case is `chat_<plan>`, and each call runs in a
scope adding `{"call": <kind>}` to the request properties, next to the `request_id` that the
request's CONTEXT gives. So the provider can tell, for each call it receives, which request
made it and what attribution it must carry.
"""

from __future__ import annotations

import os
from typing import Final

ASYNC_PLANS: Final = ("a", "s", "t", "y", "as", "at", "ys", "ats", "yas", "ayt")
SYNC_PLANS: Final = ("y", "s", "t", "ys", "ts", "yt", "yts", "tys")

MODEL: Final = "gpt-4o-mini"
ANSWER: Final = "[offline demo model] ok"

# The server processes' environment: the apps read these.
ENV_MODE: Final = "PAYI_LOAD"  # "on" (default) or "off"
ENV_PROVIDER: Final = "PAYI_LOAD_PROVIDER"  # the fake provider's base URL
ENV_DB: Final = "PAYI_LOAD_DB"  # the Django app's SQLite file
ENV_SERVER: Final = "PAYI_LOAD_SERVER"  # "asgi" or "wsgi" (Django: which resolvers and views)
ENV_USERS: Final = "PAYI_LOAD_USERS"  # how many users (Flask: its in-memory user table)

ACCOUNTS: Final = 8
PASSWORD: Final = "load-test-password"


def use_case(plan: str) -> str:
    return f"chat_{plan}"


def prompt(request_id: str, kind: str) -> str:
    return f"rid={request_id} call={kind}"


def parse_prompt(text: str) -> tuple[str, str] | None:
    """`(request id, kind)` from a prompt written by `prompt()`; None for anything else."""
    rid, _, kind = text.partition(" call=")
    if not rid.startswith("rid=") or not kind:
        return None
    return rid[4:], kind


def username(n: int) -> str:
    return f"user{n:03d}"


def account(n: int) -> str:
    """User n's account: users of one account are spread over the whole run."""
    return f"acct{n % ACCOUNTS}"


def payi_on() -> bool:
    return os.environ.get(ENV_MODE, "on") != "off"
