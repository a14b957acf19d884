"""The ``a2a-grpc`` argument parser: every command, option and help text."""

from __future__ import annotations

import argparse
import dataclasses
from importlib import metadata
from typing import Any

from a2a_grpc.bridge.settings import BridgeSettings, MiB
from a2a_grpc.cli.args import (
    DEFAULT_GRPC_PORT,
    agent_address,
    grpc_address,
    history_length,
    http_url,
    listen_address,
    page_size,
    port,
    positive_int,
    seconds,
)
from a2a_grpc.cli.calls import card, send, tasks
from a2a_grpc.cli.config import COMMANDS, LOG_LEVELS, config_args
from a2a_grpc.cli.quota import quota_args
from a2a_grpc.cli.registry import registry_args, registry_command
from a2a_grpc.cli.security import API_KEY_ENV, BEARER_TOKEN_ENV, auth_args
from a2a_grpc.cli.serving import DEFAULT_STORE, bridge_grpc_to_http, bridge_http_to_grpc, config_show, serve
from a2a_grpc.cli.tls import caller_args, listener_args
from a2a_grpc.client import ClientSettings
from a2a_grpc.server import ServerSettings
from a2a_grpc.service import SUPPORTED_VERSIONS
from a2a_grpc.tasks.store import MAX_PAGE_SIZE

__all__ = ["LOG_LEVELS", "parser"]


def default(settings: type[Any], name: str) -> Any:
    """The default of a settings field, where it is written once (the settings dataclass)."""
    return next(f.default for f in dataclasses.fields(settings) if f.name == name)


HOST = default(ServerSettings, "host")
MAX_BODY_MIB = default(BridgeSettings, "max_body_bytes") // MiB
HEARTBEAT = default(BridgeSettings, "heartbeat_seconds")
CALL_TIMEOUT = default(ClientSettings, "timeout")
CONNECT_TIMEOUT = default(ClientSettings, "connect_timeout")


def version() -> str:
    try:
        ours = metadata.version("a2a-grpc")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        ours = "(not installed)"
    return f"a2a-grpc {ours} (A2A protocol {', '.join(SUPPORTED_VERSIONS)})"


LOG_LEVEL_HELP = (
    "how much the library logs to stderr: debug, info, warning or error (default: warning; "
    "the serve and bridge start-up lines are printed at any level)"
)


def call_timeout_arg(p: argparse.ArgumentParser) -> None:
    """``--timeout SECONDS``: the deadline of a client command's calls."""
    p.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=seconds,
        default=CALL_TIMEOUT,
        help=f"deadline in seconds, above 0 (default: {CALL_TIMEOUT:g})",
    )


def parser(explicit: bool = False) -> argparse.ArgumentParser:
    """The parser of every command. ``explicit``: the flags of ``serve`` and ``bridge`` that set a
    configuration key have no defaults, so that a namespace holds only the flags given."""
    top = argparse.ArgumentParser(
        prog="a2a-grpc", description="A gRPC-native transport for the A2A protocol v1.0."
    )
    top.add_argument("--version", action="version", version=version())
    top.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        default=argparse.SUPPRESS if explicit else "warning",
        metavar="LEVEL",
        help=LOG_LEVEL_HELP,
    )
    # Also accepted after the command; SUPPRESS keeps the top-level value when it is not given there.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--log-level", choices=LOG_LEVELS, default=argparse.SUPPRESS, metavar="LEVEL", help=LOG_LEVEL_HELP
    )
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(parent: Any, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = parent.add_parser(name, parents=[common], **kwargs)
        # Unknown arguments are reported with the usage of the command that was given them.
        p.set_defaults(usage_parser=p)
        return p

    def http_args(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--public-url",
            metavar="URL",
            help="the bridge's base URL as clients reach it, for the agent card",
        )
        p.add_argument(
            "--max-body-mib",
            metavar="MIB",
            type=positive_int,
            default=MAX_BODY_MIB,
            help=f"largest request body in MiB (default: {MAX_BODY_MIB})",
        )
        p.add_argument(
            "--heartbeat",
            metavar="SECONDS",
            type=seconds,
            default=HEARTBEAT,
            help=f"seconds between SSE keep-alive comments (default: {HEARTBEAT:g})",
        )

    def log_requests_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--log-requests",
            action="store_true",
            help="log one line per call (binding, method, status, milliseconds, peer) to stderr, "
            "whatever --log-level says",
        )

    def public_address_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--public-address",
            metavar="HOST:PORT",
            help="the gRPC address clients use (a load balancer, a container's published port), "
            "named in the agent card (default: the address listened on)",
        )

    def reuse_port_arg(p: argparse.ArgumentParser, ports: str) -> None:
        p.add_argument(
            "--reuse-port",
            action="store_true",
            help=f"share {ports} with other processes started with --reuse-port (the kernel spreads "
            "connections among them); without it a port in use is an error",
        )

    p = command(
        sub,
        "serve",
        help="serve an agent over gRPC (and JSON over HTTP with --http-port)",
        description="Serve an agent over gRPC (A2AService, health checking, reflection) until interrupted; "
        "with --http-port, also JSON-RPC and HTTP+JSON in the same process.",
    )
    p.add_argument("--host", default=HOST, help=f"address to listen on (default: {HOST})")
    p.add_argument(
        "--grpc-port",
        metavar="PORT",
        type=port,
        default=DEFAULT_GRPC_PORT,
        help=f"gRPC port; 0 picks a free one (default: {DEFAULT_GRPC_PORT})",
    )
    p.add_argument(
        "--store",
        metavar="URL",
        default=DEFAULT_STORE,
        help=f"task store: memory, sqlite:///PATH (relative), sqlite:////PATH (absolute), or "
        f"redis://[:PASSWORD@]HOST:PORT/DB (rediss:// for TLS; ?prefix=NAME, ?cluster=true), shared by "
        f"replicas (default: {DEFAULT_STORE})",
    )
    p.add_argument(
        "--no-integrity-check",
        dest="integrity_check",
        action="store_false",
        help="skip the SQLite store's integrity check at start (PRAGMA quick_check reads the whole "
        "file: about 0.3 s per 100,000 tasks on an SSD; see SqliteTaskStore), for very large stores; "
        "a damaged store then fails its calls instead of refusing to start",
    )
    p.add_argument(
        "--agent",
        metavar="MODULE:ATTR",
        default="a2a_grpc.reference_agent:ReferenceAgent",
        help="the agent, as module:attribute (an Agent or Agent class; default: the reference agent)",
    )
    p.add_argument(
        "--app-dir",
        default=".",
        metavar="DIR",
        help="look for the --agent module in DIR first (default: the current directory)",
    )
    p.add_argument(
        "--http-port",
        metavar="PORT",
        type=port,
        help="also serve JSON-RPC and HTTP+JSON (the bridge, in this process) on this port; 0 picks one",
    )
    p.add_argument("--http-host", metavar="HOST", help="address of the HTTP port (default: --host)")
    # Push notification webhooks (docs/webhooks.md): the safe default refuses private targets.
    p.add_argument(
        "--webhook-allow",
        metavar="CIDR_OR_HOST",
        action="append",
        default=[],
        help="let push notifications reach this network (127.0.0.0/8, 10.0.0.0/8, ::1/128) or host "
        "name (hooks.internal; *.svc.cluster.local for every name below) although it is private; "
        "repeatable. Without it webhooks may target public addresses only: for a receiver on this "
        "machine pass --webhook-allow 127.0.0.0/8",
    )
    p.add_argument(
        "--webhook-signing-secret-file",
        metavar="PATH",
        help="sign every push notification with the secret in PATH (at least 16 bytes; surrounding "
        "whitespace ignored): header A2A-Grpc-Signature: t=UNIX_SECONDS,v1=HEX, the HMAC-SHA256 of "
        "'t.' + body; receivers check it with a2a_grpc.security.webhooks.verify_signature",
    )
    public_address_arg(p)
    registry_args(p)
    reuse_port_arg(p, "the gRPC and HTTP ports")
    log_requests_arg(p)
    http_args(p)
    auth_args(p)
    quota_args(p)
    p.add_argument(
        "--delegate-allow",
        metavar="PEERS",
        action="append",
        default=[],
        help="peers the reference agent's 'delegate' may call: HOST:PORT, an address, a network "
        "(10.1.0.0/16) or a host name, comma-separated or repeated (default: none, delegation refused)",
    )
    p.add_argument(
        "--delegation-key",
        metavar="PEM",
        help="mint a task-scoped delegation token (Ed25519 or P-256 PKCS#8 key in PEM) for every call "
        "the reference agent's 'delegate' makes, and publish its public key at "
        "/.well-known/jwks.json on the HTTP port (make one: openssl genpkey -algorithm ed25519)",
    )
    p.add_argument(
        "--delegation-issuer",
        metavar="NAME",
        help="the issuer (iss) of the tokens --delegation-key mints (default: the agent's card name)",
    )
    listener_args(p, "the gRPC and HTTP ports")
    caller_args(p, "delegations")
    config_args(p, "serve", explicit=explicit)
    p.set_defaults(func=serve)

    p = sub.add_parser(
        "bridge",
        parents=[common],
        help="bridge JSON-over-HTTP and gRPC, either way",
        description="Run the bridge as its own process: JSON-RPC and HTTP+JSON in front of a gRPC "
        "agent (http-to-grpc), or gRPC in front of a JSON-RPC / HTTP+JSON agent (grpc-to-http).",
    )
    bsub = p.add_subparsers(dest="bridge_command", required=True, metavar="DIRECTION")
    b = command(
        bsub,
        "http-to-grpc",
        help="JSON-RPC and HTTP+JSON in front of a gRPC agent",
        description="Serve JSON-RPC (POST /), the HTTP+JSON routes and /.well-known/agent-card.json, "
        "forwarding every call to a gRPC A2A agent.",
    )
    b.add_argument(
        "--listen",
        metavar="HOST:PORT",
        type=listen_address,
        default=f"{HOST}:8080",
        help=f"HOST:PORT to serve HTTP on; port 0 picks a free one (default: {HOST}:8080)",
    )
    b.add_argument(
        "--upstream",
        metavar="HOST:PORT",
        type=grpc_address,
        help="the gRPC agent, HOST:PORT (required, here or as upstream.url in the --config file)",
    )
    b.add_argument(
        "--card",
        metavar="FILE|URL",
        help="the public card to publish, a JSON file or http(s) URL (default: the upstream's public "
        "card over gRPC, or its extended card if it is not an a2a-grpc server)",
    )
    b.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=seconds,
        default=CONNECT_TIMEOUT,
        help=f"seconds to wait for the upstream at start (default: {CONNECT_TIMEOUT:g})",
    )
    reuse_port_arg(b, "the HTTP port")
    log_requests_arg(b)
    http_args(b)
    listener_args(b, "the HTTP port")
    caller_args(b, "the calls to the upstream")
    config_args(b, "bridge http-to-grpc", explicit=explicit)
    b.set_defaults(func=bridge_http_to_grpc)
    b = command(
        bsub,
        "grpc-to-http",
        help="gRPC in front of a JSON-RPC or HTTP+JSON agent",
        description="Serve lf.a2a.v1.A2AService over gRPC, forwarding every call to an agent that "
        "speaks JSON-RPC or HTTP+JSON (the first of the two its card lists).",
    )
    b.add_argument(
        "--listen",
        metavar="HOST:PORT",
        type=listen_address,
        default=f"{HOST}:50052",
        help=f"HOST:PORT to serve gRPC on; port 0 picks a free one (default: {HOST}:50052)",
    )
    b.add_argument(
        "--upstream",
        metavar="URL",
        type=http_url,
        help="the JSON agent's base URL, its card is read from there (required, here or as upstream.url "
        "in the --config file)",
    )
    public_address_arg(b)
    reuse_port_arg(b, "the gRPC port")
    log_requests_arg(b)
    listener_args(b, "the gRPC port")
    caller_args(b, "the calls to the upstream", urls=True)
    config_args(b, "bridge grpc-to-http", explicit=explicit)
    b.set_defaults(func=bridge_grpc_to_http)

    p = sub.add_parser(
        "config",
        parents=[common],
        help="print the configuration serve or bridge would run with",
        description="Work with the configuration of serve and bridge (docs/configuration.md).",
    )
    csub = p.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    c = command(
        csub,
        "show",
        help="print every setting in force and where its value comes from",
        description="Print every setting a command would run with, and its source: default, the "
        "configuration file, an A2A_* environment variable, or a flag. Secrets (passwords in URLs) are "
        "not shown. COMMAND and its options are given as to the command itself, e.g. "
        "a2a-grpc config show bridge grpc-to-http --config a2a.yaml --listen :0",
    )
    c.add_argument("--json", action="store_true", help="one JSON object: {section: {key: {value, source}}}")
    c.add_argument(
        "--config",
        dest="config_file",
        metavar="FILE",
        help="the configuration file (as COMMAND --config FILE)",
    )
    c.add_argument(
        "shown",
        nargs=argparse.REMAINDER,
        metavar="COMMAND ...",
        help=f"{' | '.join(COMMANDS)}, with its options (default: serve)",
    )
    c.set_defaults(func=config_show)

    p = command(
        sub,
        "bench",
        help="benchmark our servers against the official SDK and bare grpc.aio",
        description="Run the benchmark suite (docs/performance.md); see a2a-grpc bench --help.",
    )
    p.set_defaults(func=None)

    def client_args(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "address",
            type=agent_address,
            help="the agent: its gRPC HOST:PORT ([::1]:PORT for IPv6), or an http(s):// URL whose "
            "agent card names its gRPC interface (the first GRPC entry, and its tenant, are used)",
        )
        call_timeout_arg(p)
        p.epilog = (
            f"credentials: the environment's {API_KEY_ENV} (an API key) or {BEARER_TOKEN_ENV} (a bearer "
            "token), presented as the agent's card asks (docs/security.md)"
        )
        caller_args(p, "the calls to the agent", urls=True)

    p = command(
        sub, "send", help="send a message", description="Send a text message; print the reply as JSON."
    )
    client_args(p)
    p.add_argument("text", help="the message text (the reference agent reads its first word as the skill)")
    p.add_argument("--stream", action="store_true", help="stream events (one JSON object per line)")
    p.add_argument("--task-id", metavar="ID", help="continue this task")
    p.add_argument("--context-id", metavar="ID", help="send within this context")
    p.add_argument("--return-immediately", action="store_true", help="do not wait for the task to finish")
    p.add_argument(
        "--session",
        action="store_true",
        help="send over the session binding (one bidirectional stream; docs/session-binding.md)",
    )
    p.add_argument(
        "--show-handshake",
        action="store_true",
        help="with --session (implied): print the session's Hello and Welcome to stderr, credentials hidden",
    )
    p.add_argument(
        "--history-length",
        type=history_length,
        metavar="N",
        help="the returned task carries at most its N most recent messages, 0: none "
        "(default: as many as the agent returns)",
    )
    p.set_defaults(func=send)

    p = command(
        sub,
        "card",
        help="print an agent's card",
        description="Print the agent's public card: over gRPC from HOST:PORT (a2a-grpc's "
        "AgentCardService; from other servers, their extended card), or as published at an "
        "http(s):// base URL (/.well-known/agent-card.json) or card URL. --extended prints the "
        "card for authenticated callers (GetExtendedAgentCard) instead.",
    )
    p.add_argument(
        "address",
        type=agent_address,
        help="HOST:PORT (gRPC; [::1]:PORT for IPv6) or http(s)://HOST:PORT",
    )
    p.add_argument(
        "--extended",
        action="store_true",
        help="the extended card (GetExtendedAgentCard), over gRPC; with a URL, of the card's gRPC interface",
    )
    call_timeout_arg(p)
    caller_args(p, "the calls to the agent", urls=True)
    p.set_defaults(func=card)

    p = sub.add_parser(
        "tasks",
        parents=[common],
        help="get, list or cancel tasks",
        description="Work with an agent's tasks.",
    )
    tsub = p.add_subparsers(dest="tasks_command", required=True, metavar="ACTION")
    g = command(tsub, "get", help="print one task", description="Print one task (GetTask).")
    client_args(g)
    g.add_argument("id", help="task id")
    g.add_argument(
        "--history-length",
        type=history_length,
        metavar="N",
        help="at most the N most recent history messages, 0: none (default: as many as the agent returns)",
    )
    c = command(tsub, "cancel", help="cancel a task", description="Cancel a task (CancelTask); print it.")
    client_args(c)
    c.add_argument("id", help="task id")
    c.add_argument(
        "--history-length",
        type=history_length,
        metavar="N",
        help="print only the N most recent history messages, 0: none (CancelTask has no such "
        "field: this command trims the task it gets back; default: all)",
    )
    ls = command(
        tsub,
        "list",
        help="list tasks, most recently updated first",
        description="List tasks (ListTasks), most recently updated first.",
    )
    client_args(ls)
    ls.add_argument("--context-id", metavar="ID", help="only this context")
    ls.add_argument("--status", metavar="STATE", help="only this state, e.g. working, completed")
    ls.add_argument(
        "--page-size",
        type=page_size,
        metavar="N",
        help=f"tasks per page, 1..{MAX_PAGE_SIZE} (default: the agent's, 50 for ours)",
    )
    ls.add_argument("--page-token", metavar="TOKEN", help="nextPageToken of the previous page")
    p.set_defaults(func=tasks)

    # `sessions`: the debug endpoints (a2a_grpc.cli.debug), imported here to keep this block whole.
    from a2a_grpc.cli.debug import sessions

    p = command(
        sub,
        "sessions",
        help="list a server's live sessions (its debug endpoints)",
        description="Print the live sessions of a server from its debug endpoints (/debug/a2a/sessions "
        "on its HTTP port): peer, age, negotiated values, calls in flight, credit, last heartbeat. "
        f"Credentials come from {API_KEY_ENV} and {BEARER_TOKEN_ENV}; only the sessions of the "
        "principal they prove are shown.",
    )
    p.add_argument("url", type=http_url, help="the server's http(s):// base URL (its HTTP port)")
    p.add_argument("--id", metavar="SESSION", help="one session, with its handshake negotiation")
    p.add_argument("--json", action="store_true", help="print the endpoint's JSON instead of a table")
    call_timeout_arg(p)
    caller_args(p, "the request", urls=True)
    p.set_defaults(func=sessions)

    registry_command(sub, command, call_timeout_arg)
    return top
