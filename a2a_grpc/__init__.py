"""a2a-grpc: a gRPC-native transport for the A2A protocol v1.0, with a JSON-over-HTTP bridge.

What an agent author and a client user need, from one place::

    from a2a_grpc import A2AClient, Agent, RequestContext, TaskUpdater, types

Names are loaded on first use, so ``import a2a_grpc`` (and a client) loads no server-side code.
The modules behind them: :mod:`a2a_grpc.agent`, :mod:`a2a_grpc.client`, :mod:`a2a_grpc.server`,
:mod:`a2a_grpc.errors`, :mod:`a2a_grpc.parts`, :mod:`a2a_grpc.types`, :mod:`a2a_grpc.tasks`,
:mod:`a2a_grpc.resilience` (the client's retries and breakers), :mod:`a2a_grpc.service`
(interceptors), :mod:`a2a_grpc.testing`, and the JSON bridge, :mod:`a2a_grpc.bridge` (its
``AgentStack`` serves an agent over gRPC and both JSON bindings).
Modules whose names start with an underscore are internal.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from a2a_grpc import errors, parts, types
    from a2a_grpc.agent import Agent, ArtifactWriter, RequestContext, TaskUpdater
    from a2a_grpc.client import A2AClient, ClientSettings
    from a2a_grpc.errors import A2AError
    from a2a_grpc.parts import data_part, file_part, part_data, text_part
    from a2a_grpc.resilience import ResiliencePolicy
    from a2a_grpc.server import A2AServer, ServerSettings
    from a2a_grpc.service import CallContext, Interceptor
    from a2a_grpc.tasks import InMemoryTaskStore, SqliteTaskStore, TaskStore, open_store
    from a2a_grpc.testing import serving

__all__ = [
    "A2AClient",
    "A2AError",
    "A2AServer",
    "Agent",
    "ArtifactWriter",
    "CallContext",
    "ClientSettings",
    "InMemoryTaskStore",
    "Interceptor",
    "RequestContext",
    "ResiliencePolicy",
    "ServerSettings",
    "SqliteTaskStore",
    "TaskStore",
    "TaskUpdater",
    "data_part",
    "errors",
    "file_part",
    "open_store",
    "part_data",
    "parts",
    "serving",
    "text_part",
    "types",
]

_WHERE = {
    "A2AClient": "a2a_grpc.client",
    "ClientSettings": "a2a_grpc.client",
    "ResiliencePolicy": "a2a_grpc.resilience",
    "A2AError": "a2a_grpc.errors",
    "A2AServer": "a2a_grpc.server",
    "ServerSettings": "a2a_grpc.server",
    "Agent": "a2a_grpc.agent",
    "ArtifactWriter": "a2a_grpc.agent",
    "RequestContext": "a2a_grpc.agent",
    "TaskUpdater": "a2a_grpc.agent",
    "CallContext": "a2a_grpc.service",
    "Interceptor": "a2a_grpc.service",
    "InMemoryTaskStore": "a2a_grpc.tasks",
    "SqliteTaskStore": "a2a_grpc.tasks",
    "TaskStore": "a2a_grpc.tasks",
    "open_store": "a2a_grpc.tasks",
    "data_part": "a2a_grpc.parts",
    "file_part": "a2a_grpc.parts",
    "part_data": "a2a_grpc.parts",
    "text_part": "a2a_grpc.parts",
    "serving": "a2a_grpc.testing",
}
_MODULES = frozenset({"errors", "parts", "types"})


def __getattr__(name: str) -> Any:
    """Load a public name on first use (PEP 562), then keep it."""
    if name in _MODULES:
        value: Any = importlib.import_module(f"a2a_grpc.{name}")
    elif name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
    else:
        raise AttributeError(f"module 'a2a_grpc' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
