"""What the debug endpoints show: every live session of a server, as JSON-ready dicts.

:func:`sessions_view` lists the sessions of a :class:`~a2a_grpc.session.server.SessionHost` that
belong to one principal (the caller's: another principal's sessions are not there, as its tasks
are not), :func:`session_view` shows one of them with its handshake. Per session: its id, peer,
principal, age, whether a connection is attached, the negotiated values, the running calls
(operation and age, never payloads), the credit windows, the last heartbeat, and with
``handshake`` the Hello (credentials hidden: :mod:`a2a_grpc.observability.debuglog`) and the
Welcome (its resume token hidden) of its opening and of its latest resumes.

The HTTP side is :mod:`a2a_grpc.bridge.debug` (``GET /debug/a2a/sessions``); ``a2a-grpc sessions``
prints the same.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from a2a_grpc.observability.debuglog import hello_view, welcome_view
from a2a_grpc.security.identity import Principal
from a2a_grpc.session.frames import CALLS
from a2a_grpc.session.server import ServerSession, SessionHost

__all__ = ["CALLS_SHOWN", "session_view", "sessions_view", "visible_session"]

CALLS_SHOWN = 256
"""Running calls listed per session (oldest first); ``calls.count`` counts them all. A session
may run thousands at once: the view stays small."""


def _who(principal: Principal | None) -> tuple[str, str] | None:
    return None if principal is None else (principal.id, principal.tenant)


def _seconds(value: float) -> float:
    return round(max(value, 0.0), 3)


def _principal(principal: Principal | None) -> dict[str, str] | None:
    if principal is None:
        return None
    return {"id": principal.id, "scheme": principal.scheme, "tenant": principal.tenant}


def visible_session(host: SessionHost, session_id: str, viewer: Principal | None) -> ServerSession | None:
    """The live session ``session_id`` if ``viewer`` may see it (it is theirs), else None."""
    session = host.sessions.get(session_id)
    if session is None or _who(session.base.principal) != _who(viewer):
        return None
    return session


def session_view(session: ServerSession, *, handshake: bool = False) -> dict[str, Any]:
    """One session as a JSON-ready dict (see the module doc); with ``handshake`` its negotiation."""
    now = asyncio.get_running_loop().time()
    welcome = session.welcome
    calls = sorted(session.call_methods.items(), key=lambda item: item[1][1])
    session_credit, call_credit = session.credit()
    heartbeat = session.last_heartbeat
    view: dict[str, Any] = {
        "session_id": session.session_id,
        "peer": session.base.peer or None,
        "principal": _principal(session.base.principal),
        "client_agent": session.hello.agent_name or None,
        "tenant": session.hello.tenant or None,
        "opened_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - (now - session.opened))),
        "age_seconds": _seconds(now - session.opened),
        "attached": session.attached,
        "ending": session.finishing,
        "resumes": len(session.resumes),
        "negotiated": {
            "protocol_version": welcome.protocol_version,
            "heartbeat_seconds": welcome.heartbeat_interval.ToTimedelta().total_seconds(),
            "missed_heartbeats": welcome.missed_heartbeats,
            "max_frame_bytes": welcome.max_frame_bytes,
            "max_concurrent_calls": welcome.max_concurrent_calls,
            "window": {
                "call_frames": welcome.window.call_frames,
                "call_bytes": welcome.window.call_bytes,
                "session_frames": welcome.window.session_frames,
                "session_bytes": welcome.window.session_bytes,
            },
        },
        "calls": {
            "count": len(calls),
            "running": [
                {
                    "call_id": call_id,
                    "method": CALLS[field].name if field in CALLS else field,
                    "age_seconds": _seconds(now - started),
                }
                for call_id, (field, started) in calls[:CALLS_SHOWN]
            ],
        },
        "credit": {
            "server_may_send": {
                "session": {"frames": session_credit[0], "bytes": session_credit[1]},
                "calls": {
                    str(call_id): {"frames": frames, "bytes": size}
                    for call_id, (frames, size) in sorted(call_credit.items())[:CALLS_SHOWN]
                },
            },
            "client_may_start_calls": max(welcome.max_concurrent_calls - len(calls), 0),
            "unacknowledged_frames": len(session.replay),
        },
        "last_heartbeat_seconds_ago": None if heartbeat is None else _seconds(now - heartbeat),
        "last_frame_seconds_ago": _seconds(now - session.last_seen) if session.last_seen else None,
    }
    if handshake:
        view["handshake"] = {
            "hello": hello_view(session.hello),
            "welcome": welcome_view(welcome),
            "resumes": [{"hello": hello_view(h), "welcome": welcome_view(w)} for h, w in session.resumes],
        }
    return view


def sessions_view(host: SessionHost | None, viewer: Principal | None) -> list[dict[str, Any]]:
    """The live sessions of ``host`` that ``viewer`` may see, oldest first (none without a host)."""
    if host is None:
        return []
    mine = [s for s in list(host.sessions.values()) if _who(s.base.principal) == _who(viewer)]
    return [session_view(s) for s in sorted(mine, key=lambda s: s.opened)]
