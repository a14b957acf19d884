"""``a2a-grpc sessions URL``: a server's live sessions, from its debug endpoints (``/debug/a2a/sessions``).

A table by default, the endpoint's JSON with ``--json``; ``--id SESSION`` shows one session with
its handshake negotiation. Credentials come from the environment (``A2A_GRPC_API_KEY``,
``A2A_GRPC_BEARER_TOKEN``), as for every other call: the endpoints are authenticated like calls, and
show the sessions of the principal the credentials prove.
"""

from __future__ import annotations

import argparse
import json
from typing import Any
from urllib.parse import quote

from a2a_grpc.cli.common import CliError, require_http_extra
from a2a_grpc.cli.security import credentials_from
from a2a_grpc.cli.tls import caller_tls
from a2a_grpc.security.redact import redact_userinfo, scrub_urls

__all__ = ["sessions", "sessions_table"]

SESSIONS_PATH = "/debug/a2a/sessions"  # a2a_grpc.bridge.debug.SESSIONS_PATH (the CLI needs no bridge import)
COLUMNS = ("SESSION", "PEER", "PRINCIPAL", "AGE", "ATTACHED", "CALLS", "HEARTBEAT", "FRAMES", "CREDIT")


def _seconds(value: Any) -> str:
    return "-" if value is None else f"{float(value):.1f}s"


def _row(view: dict[str, Any]) -> tuple[str, ...]:
    principal = view.get("principal") or {}
    negotiated = view.get("negotiated") or {}
    credit = (view.get("credit") or {}).get("server_may_send", {}).get("session", {})
    return (
        str(view.get("session_id", "")),
        str(view.get("peer") or "-"),
        str(principal.get("id") or "-"),
        _seconds(view.get("age_seconds")),
        "yes" if view.get("attached") else "no",
        str((view.get("calls") or {}).get("count", 0)),
        f"{negotiated.get('heartbeat_seconds', 0):g}s/{_seconds(view.get('last_heartbeat_seconds_ago'))} ago",
        str(negotiated.get("max_frame_bytes", "-")),
        f"{credit.get('frames', '-')} frames/{credit.get('bytes', '-')} B",
    )


def sessions_table(views: list[dict[str, Any]]) -> str:
    """The sessions as an aligned text table, one line each."""
    rows = [COLUMNS, *(_row(v) for v in views)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = ("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows)
    return "\n".join(line.rstrip() for line in lines)


def _one(view: dict[str, Any]) -> str:
    lines = [sessions_table([view]), ""]
    for call in (view.get("calls") or {}).get("running", []):
        lines.append(f"call {call['call_id']}: {call['method']}, running for {_seconds(call['age_seconds'])}")
    lines.append(f"negotiated: {json.dumps(view.get('negotiated'))}")
    lines.append(f"credit: {json.dumps(view.get('credit'))}")
    handshake = view.get("handshake") or {}
    lines.append(f"hello: {json.dumps(handshake.get('hello'))}")
    lines.append(f"welcome: {json.dumps(handshake.get('welcome'))}")
    for i, resume in enumerate(handshake.get("resumes", []), 1):
        lines.append(f"resume {i} hello: {json.dumps(resume.get('hello'))}")
        lines.append(f"resume {i} welcome: {json.dumps(resume.get('welcome'))}")
    return "\n".join(lines)


async def sessions(args: argparse.Namespace) -> int:
    require_http_extra("reading a server's debug endpoints")
    import httpx

    base = args.url.rstrip("/")
    url = base + SESSIONS_PATH + (f"/{quote(args.id, safe='')}" if args.id else "")
    credentials = credentials_from()
    headers = dict(credentials.headers()) if credentials is not None else {}
    tls = caller_tls(args)
    shown = redact_userinfo(base)
    async with httpx.AsyncClient(verify=tls.ssl_context() if tls is not None else True) as http:
        try:
            response = await http.get(url, headers=headers, timeout=args.timeout)
        except httpx.HTTPError as exc:
            reason = scrub_urls(str(exc)) or type(exc).__name__
            raise CliError(f"cannot read the sessions at {shown}: {reason}") from None
    if response.status_code != 200:
        raise CliError(f"{shown}{SESSIONS_PATH} answered {response.status_code}: {_reason(response.content)}")
    try:
        body = response.json()
    except ValueError:
        raise CliError(f"{shown}{SESSIONS_PATH} did not answer JSON") from None
    if args.json:
        print(json.dumps(body, indent=2))
    elif args.id:
        print(_one(body))
    else:
        print(sessions_table(body))
    return 0


def _reason(content: bytes) -> str:
    """The message of an error answer (a google.rpc.Status body), or its first bytes."""
    try:
        message = json.loads(content).get("error", {}).get("message")
    except (ValueError, AttributeError):
        message = None
    return str(message) if message else content[:200].decode("utf-8", "replace") or "(no body)"
