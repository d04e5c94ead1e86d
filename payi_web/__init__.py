"""payi-web: Pay-i GenAI cost tracking for Django and Flask.

The core knows nothing of either framework: a tracking context in contextvars, the scopes
that derive it (`track`, `track_context`), and the `xProxy-*` headers that carry it.
"""

from ._configure import configure
from ._version import __version__ as __version__
from .core.config import Config, current_config
from .core.context import TrackingContext, get_context
from .core.headers import PayiHeaders, payi_headers
from .core.records import CallRecord, Sink, Units, add_sink, flush, remove_sink
from .core.threads import bind_context, patch_thread_pool, unpatch_thread_pool
from .core.tracking import track, track_context
from .instrument import instrument, uninstrument
from .propagation import continue_context, inject
from .providers import proxy_url

__all__ = [
    "CallRecord",
    "Config",
    "PayiHeaders",
    "Sink",
    "TrackingContext",
    "Units",
    "add_sink",
    "bind_context",
    "configure",
    "continue_context",
    "current_config",
    "flush",
    "get_context",
    "inject",
    "instrument",
    "patch_thread_pool",
    "payi_headers",
    "proxy_url",
    "remove_sink",
    "track",
    "track_context",
    "uninstrument",
    "unpatch_thread_pool",
]
