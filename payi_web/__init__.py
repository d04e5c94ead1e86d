"""payi-web: Pay-i GenAI cost tracking for Django and Flask.

The core knows nothing of either framework: a tracking context in contextvars, the scopes
that derive it (`track`, `track_context`), and the `xProxy-*` headers that carry it.
"""

from ._configure import configure
from ._version import __version__ as __version__
from .config import Config, current_config, proxy_url
from .context import TrackingContext, get_context
from .headers import PayiHeaders, payi_headers
from .instrument import instrument, uninstrument
from .records import CallRecord, Sink, Units, add_sink, flush, remove_sink
from .threads import bind_context, patch_thread_pool, unpatch_thread_pool
from .tracking import track, track_context

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
    "current_config",
    "flush",
    "get_context",
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
