"""payi-web: Pay-i GenAI cost tracking for Django and Flask.

The core knows nothing of either framework: a tracking context in contextvars, the scopes
that derive it (`track`, `track_context`), and the `xProxy-*` headers that carry it.
"""

from .config import configure
from .context import TrackingContext, get_context
from .headers import PayiHeaders, payi_headers
from .threads import bind_context, patch_thread_pool, unpatch_thread_pool
from .tracking import track, track_context

__all__ = [
    "PayiHeaders",
    "TrackingContext",
    "bind_context",
    "configure",
    "get_context",
    "patch_thread_pool",
    "payi_headers",
    "track",
    "track_context",
    "unpatch_thread_pool",
]

__version__ = "0.1.0"
