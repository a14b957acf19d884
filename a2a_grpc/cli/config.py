"""The configuration of ``serve`` and ``bridge``: which sections each reads, which flag sets which key,
what the command line owns itself, and ``a2a-grpc config show``.

The sections are derived from the settings dataclasses (:mod:`a2a_grpc.settings`); the command
line's own keys (the agent, the store, the listeners, authentication and TLS files ...) are
dataclasses here, read the same way. A flag given explicitly overrides the file and the
environment; a flag not given leaves the key to them (the parser's defaults are ``SUPPRESS``).
"""

from __future__ import annotations

import argparse
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from a2a_grpc.cli.args import DEFAULT_GRPC_PORT, grpc_address, http_url, port
from a2a_grpc.cli.common import CliError

if TYPE_CHECKING:  # a2a_grpc.settings (pydantic) is imported when a configuration is read, not for --help
    from a2a_grpc.settings import Configuration, Section

__all__ = [
    "COMMANDS",
    "DEFAULT_STORE",
    "LOG_LEVELS",
    "AuthSettings",
    "CallerTlsSettings",
    "HttpSettings",
    "ListenerTlsSettings",
    "LogSettings",
    "ServeSettings",
    "UpstreamSettings",
    "command_of",
    "config_args",
    "configuration",
    "given_flags",
    "reference",
    "sections_of",
    "show",
    "with_tables",
]

LOG_LEVELS = ("debug", "info", "warning", "error")
DEFAULT_STORE = "sqlite:///.a2a/tasks.db"
MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class LogSettings:
    """What the process logs to stderr."""

    level: Literal["debug", "info", "warning", "error"] = "warning"
    """How much the library logs: debug, info, warning or error (the start-up lines are printed at
    any level)."""


@dataclass(frozen=True, slots=True)
class ServeSettings:
    """What ``a2a-grpc serve`` serves: the agent, its task store, its webhooks and delegations."""

    agent: str = "a2a_grpc.reference_agent:ReferenceAgent"
    """The agent, as ``module:attribute`` (an Agent or an Agent class)."""
    app_dir: str = "."
    """Look for the agent's module in this directory first."""
    store: str = DEFAULT_STORE
    """The task store: ``memory``, ``sqlite:///PATH`` (relative) or ``sqlite:////PATH`` (absolute), or
    ``redis://HOST:PORT/DB?prefix=NAME`` (``rediss://`` for TLS) shared by replicas (docs/scaling.md)."""
    integrity_check: bool = True
    """Check an SQLite store's integrity at start (it reads the whole file)."""
    webhook_allow: tuple[str, ...] = ()
    """Private networks (``127.0.0.0/8``) or host names push notifications may reach."""
    webhook_signing_secret_file: str | None = None
    """A file holding the secret every push notification is signed with."""
    delegate_allow: tuple[str, ...] = ()
    """Peers the reference agent's ``delegate`` may call (HOST:PORT, networks, host names)."""
    delegation_key: str | None = None
    """A PEM private key: mint a task-scoped delegation token for every delegated call."""
    delegation_issuer: str | None = None
    """The issuer of the tokens ``delegation_key`` mints; None: the agent card's name."""
    delegation_lifetime: float | None = None
    """Seconds each token ``delegation_key`` mints is valid for (its ``exp``); null: the minter's
    default (``DelegationMinter``'s, shown here)."""

    def __post_init__(self) -> None:
        lifetime = self.delegation_lifetime
        if lifetime is not None and not 0 < lifetime < math.inf:
            raise ValueError(f"delegation_lifetime must be a finite number of seconds > 0, not {lifetime}")


@dataclass(frozen=True, slots=True)
class HttpSettings:
    """The HTTP port of the JSON bindings (the bridge)."""

    host: str | None = None
    """The address it listens on; None: the gRPC server's (``server.host``)."""
    port: int | None = None
    """Its port, 0 picks a free one; None: no HTTP port (``serve``)."""
    reuse_port: bool = False
    """Share the port with other processes asking the same (SO_REUSEPORT)."""

    def __post_init__(self) -> None:
        if self.port is not None and not 0 <= self.port <= 65535:
            raise ValueError(f"port must be a port number 0..65535 or null, not {self.port}")


@dataclass(frozen=True, slots=True)
class UpstreamSettings:
    """The agent a bridge forwards every call to."""

    url: str | None = None
    """``bridge http-to-grpc``: its gRPC HOST:PORT; ``bridge grpc-to-http``: its base URL. Required."""
    card: str | None = None
    """``bridge http-to-grpc``: the public card to publish, a JSON file or an http(s) URL; None: the
    upstream's own."""


@dataclass(frozen=True, slots=True)
class AuthSettings:
    """The credentials every call must carry (docs/security.md); the secrets themselves are in files."""

    api_keys_file: str | None = None
    """API keys: lines of ``PRINCIPAL KEY [TENANT]`` or ``PRINCIPAL sha256:HEX [TENANT]``."""
    api_key_header: str = "X-API-Key"
    """The header of the API key."""
    jwt_issuer: str | None = None
    """Bearer JWTs: trust tokens whose ``iss`` is this."""
    jwt_audience: str | None = None
    """Bearer JWTs: this agent's audience (``aud``)."""
    jwks_url: str | None = None
    """Bearer JWTs: the https:// URL of their public keys (JWKS), cached."""
    jwks_file: str | None = None
    """Bearer JWTs: a JWKS file."""
    jwt_tenant_claim: str | None = None
    """Bearer JWTs: a claim that binds the caller to a tenant."""
    mtls_identity: Literal["common_name", "uri", "dns", "sha256"] | None = None
    """Mutual TLS: the part of the client certificate that names the principal."""
    trust_delegations: tuple[str, ...] = ()
    """``ISSUER=JWKS`` entries: accept task-scoped delegation tokens ISSUER mints."""
    delegation_audience: tuple[str, ...] = ()
    """The names delegators reach this agent by; empty: the address it listens on."""


@dataclass(frozen=True, slots=True)
class ListenerTlsSettings:
    """TLS of the ports this process serves; without ``cert`` and ``key``: plaintext."""

    cert: str | None = None
    """The PEM certificate (chain: ours first)."""
    key: str | None = None
    """Its unencrypted PEM private key."""
    client_ca: str | None = None
    """PEM CA certificate(s) client certificates must be issued by (mutual TLS)."""
    require_client_cert: bool = False
    """Mutual TLS: refuse clients without a certificate from ``client_ca``."""


@dataclass(frozen=True, slots=True)
class CallerTlsSettings:
    """TLS of the calls this process makes (delegations, the upstream); off: plaintext."""

    enabled: bool = False
    """Call over TLS, verifying servers against the system's roots (implied by the others)."""
    ca: str | None = None
    """Verify servers against these PEM CA certificate(s)."""
    client_cert: str | None = None
    """Present this PEM certificate (mutual TLS)."""
    client_key: str | None = None
    """The unencrypted PEM private key of ``client_cert``."""


# -- which command reads which section ------------------------------------------------------------

COMMANDS = ("serve", "bridge http-to-grpc", "bridge grpc-to-http")
"""The commands that read a configuration (``--config``), as ``config show`` names them."""


def sections_of(command: str) -> tuple[Section, ...]:
    """The sections ``command`` reads, in the order ``config show`` prints them."""
    from a2a_grpc.bridge.settings import BridgeSettings, OutboundSettings
    from a2a_grpc.mesh.registry import RegistrySettings
    from a2a_grpc.security.delegation import DEFAULT_LIFETIME
    from a2a_grpc.session.pool import PoolSettings
    from a2a_grpc.settings import Section, library_sections
    from a2a_grpc.tasks.settings import StoreSettings

    own = {
        "log": Section.of("log", LogSettings),
        "serve": Section.of("serve", ServeSettings, defaults={"delegation_lifetime": DEFAULT_LIFETIME}),
        "auth": Section.of("auth", AuthSettings),
        "tls": Section.of("tls", ListenerTlsSettings),
        "caller_tls": Section.of("caller_tls", CallerTlsSettings),
        "upstream": Section.of("upstream", UpstreamSettings, only=["url"]),
    }
    if command == "serve":
        lib = library_sections(server={"port": DEFAULT_GRPC_PORT})
        http = Section.of("http", HttpSettings, only=["host", "port"])
        names = ("log", "serve", "store", "server", "http", "session", "limits", "bridge", "push", "peers",
                 "registry", "observability")  # fmt: skip
        peers = Section.of("peers", PoolSettings, doc="How the reference agent's delegate keeps its "
                           "connections to peers (one per peer, shared by its calls).")  # fmt: skip
        store = Section.of("store", StoreSettings, doc="How a durable task store (serve.store: SQLite "
                           "or Redis) waits, commits, connects and leases its tasks.")  # fmt: skip
        registry = Section.of("registry", RegistrySettings, doc="The capability registry this agent "
                              "registers in (docs/registry.md).")  # fmt: skip
        table = {**own, **lib, "http": http, "bridge": Section.of("bridge", BridgeSettings), "peers": peers,
                 "store": store, "registry": registry}  # fmt: skip
        return (*(table[n] for n in names), own["auth"], own["tls"], own["caller_tls"])
    if command == "bridge http-to-grpc":
        lib = library_sections()
        http = Section.of("http", HttpSettings, defaults={"host": "127.0.0.1", "port": 8080})
        upstream = Section.of("upstream", UpstreamSettings)
        bridge = Section.of("bridge", BridgeSettings)
        return (own["log"], upstream, http, bridge, lib["client"], lib["resilience"], lib["observability"],
                own["tls"], own["caller_tls"])  # fmt: skip
    if command == "bridge grpc-to-http":
        lib = library_sections(server={"port": 50052})
        outbound = Section.of("outbound", OutboundSettings)
        return (own["log"], own["upstream"], lib["server"], outbound, lib["observability"],
                own["tls"], own["caller_tls"])  # fmt: skip
    raise ValueError(f"no configuration for {command!r}")


# -- flags -----------------------------------------------------------------------------------------

Convert = Callable[[Any], tuple[Any, ...]]


def _same(n: int) -> Convert:
    return lambda value: (value,) * n


_FLAGS: dict[str, tuple[str, tuple[str, ...]]] = {
    # dest: (the flag, the keys it sets)
    "log_level": ("--log-level", ("log.level",)),
    "metrics_port": ("--metrics-port", ("observability.metrics_port",)),
    "metrics_host": ("--metrics-host", ("observability.metrics_host",)),
    "log_format": ("--log-format", ("observability.log_format",)),
    "debug": ("--debug", ("observability.debug",)),
    "spans": ("--spans", ("observability.spans",)),
    "otlp_endpoint": ("--otlp-endpoint", ("observability.otlp_endpoint",)),
    "service_name": ("--service-name", ("observability.service_name",)),
    "tls_cert": ("--tls-cert", ("tls.cert",)),
    "tls_key": ("--tls-key", ("tls.key",)),
    "tls_client_ca": ("--tls-client-ca", ("tls.client_ca",)),
    "tls_require_client_cert": ("--tls-require-client-cert", ("tls.require_client_cert",)),
    "tls": ("--tls", ("caller_tls.enabled",)),
    "tls_ca": ("--tls-ca", ("caller_tls.ca",)),
    "tls_client_cert": ("--tls-client-cert", ("caller_tls.client_cert",)),
    "tls_client_key": ("--tls-client-key", ("caller_tls.client_key",)),
    "public_url": ("--public-url", ("bridge.public_url",)),
    "max_body_mib": ("--max-body-mib", ("bridge.max_body_bytes",)),
    "heartbeat": ("--heartbeat", ("bridge.heartbeat_seconds",)),
    "public_address": ("--public-address", ("server.public_address",)),
    "upstream": ("--upstream", ("upstream.url",)),
}
_SERVE_FLAGS: dict[str, tuple[str, tuple[str, ...]]] = {
    "host": ("--host", ("server.host",)),
    "grpc_port": ("--grpc-port", ("server.port",)),
    "http_port": ("--http-port", ("http.port",)),
    "http_host": ("--http-host", ("http.host",)),
    "reuse_port": ("--reuse-port", ("server.reuse_port",)),
    "log_requests": ("--log-requests", ("server.log_requests", "bridge.log_requests")),
    "allow_unauthenticated": ("--allow-unauthenticated", ("server.allow_unauthenticated",)),
    **{
        name: ("--" + name.replace("_", "-"), ("limits." + name,))
        for name in (
            "rate_per_principal",
            "rate_per_tenant",
            "max_running_tasks_per_principal",
            "max_streams_per_principal",
            "max_sessions_per_principal",
        )
    },
    **{
        name: ("--" + name.replace("_", "-"), ("serve." + name,))
        for name in (
            "store",
            "agent",
            "app_dir",
            "webhook_allow",
            "webhook_signing_secret_file",
            "delegate_allow",
            "delegation_key",
            "delegation_issuer",
        )
    },
    "integrity_check": ("--no-integrity-check", ("serve.integrity_check",)),
    "registry": ("--registry", ("registry.url",)),
    "registry_address": ("--registry-address", ("registry.address",)),
    **{
        name: ("--" + name.replace("_", "-"), ("auth." + name,))
        for name in (
            "api_keys_file",
            "api_key_header",
            "jwt_issuer",
            "jwt_audience",
            "jwks_url",
            "jwks_file",
            "jwt_tenant_claim",
            "mtls_identity",
            "trust_delegations",
            "delegation_audience",
        )
    },
}
_BY_COMMAND: dict[str, dict[str, tuple[str, tuple[str, ...]]]] = {
    "serve": _SERVE_FLAGS,
    "bridge http-to-grpc": {
        "listen": ("--listen", ("http.host", "http.port")),
        "card": ("--card", ("upstream.card",)),
        "timeout": ("--timeout", ("client.connect_timeout",)),
        "reuse_port": ("--reuse-port", ("http.reuse_port",)),
        "log_requests": ("--log-requests", ("bridge.log_requests",)),
    },
    "bridge grpc-to-http": {
        "listen": ("--listen", ("server.host", "server.port")),
        "reuse_port": ("--reuse-port", ("server.reuse_port",)),
        "log_requests": ("--log-requests", ("server.log_requests",)),
    },
}
_CONVERT: dict[str, Convert] = {
    "max_body_mib": lambda mib: (mib * MiB,),
    "listen": lambda host_port: tuple(host_port),
    "webhook_allow": lambda v: (tuple(v),),
    "delegate_allow": lambda v: (tuple(v),),
    "trust_delegations": lambda v: (tuple(v),),
    "delegation_audience": lambda v: (tuple(v),),
}


def command_of(args: argparse.Namespace) -> str | None:
    """The configured command ``args`` run (``serve``, ``bridge http-to-grpc`` ...), else None."""
    if args.command == "serve":
        return "serve"
    if args.command == "bridge":
        return f"bridge {args.bridge_command}"
    return None


def _given(command: str, args: argparse.Namespace, keys: set[str]) -> dict[str, tuple[Any, str]]:
    """``{key: (value, flag)}`` of the flags given (``args.given_flags``, see :func:`given_flags`)."""
    out: dict[str, tuple[Any, str]] = {}
    table = {**_FLAGS, **_BY_COMMAND[command]}
    given: frozenset[str] = getattr(args, "given_flags", frozenset())
    for dest, (flag, targets) in table.items():
        if dest not in given or not set(targets) <= keys:
            continue
        value = getattr(args, dest)
        converted = _CONVERT.get(dest, _same(len(targets)))(value)
        out |= {key: (v, flag) for key, v in zip(targets, converted, strict=True)}
    return out


# The namespace attributes the helpers of the command line read (security.py, tls.py, serving.py),
# filled from the configuration so that a value from the file works as the flag does.
_ARGS: dict[str, str] = {
    **{f"serve.{n}": n for n in ServeSettings.__dataclass_fields__},
    **{f"auth.{n}": n for n in AuthSettings.__dataclass_fields__},
    **{f"tls.{n}": f"tls_{n}" for n in ListenerTlsSettings.__dataclass_fields__},
    "caller_tls.enabled": "tls",
    **{f"caller_tls.{n}": f"tls_{n}" for n in ("ca", "client_cert", "client_key")},
    "server.allow_unauthenticated": "allow_unauthenticated",
}


def configuration(args: argparse.Namespace, *, to_run: bool = True) -> Configuration:
    """The configuration of the command ``args`` run: its file, the environment and its flags;
    ``args`` gets the values the command line's helpers read. ConfigError names what is wrong;
    ``to_run`` (not ``config show``): a bridge without an upstream is refused too."""
    from a2a_grpc.settings import load

    command = command_of(args)
    if command is None:
        raise ValueError(f"a2a-grpc {args.command} reads no configuration")
    sections = sections_of(command)
    keys = {k.path for s in sections for k in s.keys}
    config = load(sections, file=getattr(args, "config_file", None), flags=_given(command, args, keys))
    for path, dest in _ARGS.items():
        if path in config.values:
            value = config.value(path)
            setattr(args, dest, list(value) if isinstance(value, tuple) else value)
    if config.has("upstream"):
        upstream = config.value("upstream.url")
        if upstream is None and not to_run:
            return config
        if upstream is None:
            raise CliError(f"a2a-grpc {command} needs its upstream: --upstream, or upstream.url in a file")
        # A flag was checked by its argparse type already; a value from a file or the environment here.
        check = grpc_address if command == "bridge http-to-grpc" else http_url
        try:
            args.upstream = check(upstream)
        except argparse.ArgumentTypeError as exc:
            raise config.refuse("upstream.url", str(exc)) from None
    return config


def show(config: Configuration, as_json: bool) -> str:
    return json.dumps(config.as_json(), indent=2) if as_json else config.as_text()


def config_args(p: argparse.ArgumentParser, command: str, *, explicit: bool) -> None:
    """``--config`` and the observability flags of ``command``. With ``explicit`` every flag that
    sets a key has no default (argparse.SUPPRESS): the namespace then holds the flags given, and
    only those (:func:`given_flags`); a flag not given leaves its key to the configuration file,
    the environment or the default."""
    from a2a_grpc.observability.settings import LOG_FORMATS, ObservabilitySettings

    defaults = ObservabilitySettings()
    p.add_argument(
        "--config",
        dest="config_file",
        metavar="FILE",
        help="read settings from this YAML file (default: the file $A2A_CONFIG names, if any); flags "
        "override it, and A2A_<SECTION>__<KEY> environment variables override it too "
        "(docs/configuration.md; a2a-grpc config show prints what is in force)",
    )
    g = p.add_argument_group("metrics, traces and logs (docs/configuration.md, section observability)")
    g.add_argument(
        "--metrics-port",
        metavar="PORT",
        type=port,
        help="serve /metrics (Prometheus) and the debug endpoints on this port of their own; 0 picks "
        "one (default: not served)",
    )
    g.add_argument(
        "--metrics-host",
        metavar="HOST",
        default=defaults.metrics_host,
        help=f"the address of --metrics-port (default: {defaults.metrics_host})",
    )
    g.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default=defaults.log_format,
        help=f"log lines as text or one JSON object each (default: {defaults.log_format})",
    )
    g.add_argument(
        "--debug",
        action="store_true",
        help="log full session handshakes and request payloads, credentials redacted (also A2A_DEBUG=1)",
    )
    g.add_argument(
        "--spans",
        action="store_true",
        help="record OpenTelemetry spans and export them over OTLP (needs a2a-grpc[otel]); trace context "
        "is propagated either way",
    )
    g.add_argument(
        "--otlp-endpoint", metavar="URL", help="where spans go (default: the OpenTelemetry SDK's own)"
    )
    g.add_argument(
        "--service-name", metavar="NAME", help="service.name of the spans (default: the agent card's name)"
    )
    if explicit:
        dests = {*_FLAGS, *_BY_COMMAND[command]}
        # Not set_defaults(): it would put the SUPPRESS marker itself into the namespace.
        for action in p._actions:
            if action.dest in dests:
                action.default = argparse.SUPPRESS


def given_flags(argv: list[str], explicit_parser: argparse.ArgumentParser) -> frozenset[str]:
    """The destinations of the flags ``argv`` gives explicitly: argparse fills in defaults, so the
    command line is parsed again by a parser without them (``parser(explicit=True)``)."""
    bare, _ = explicit_parser.parse_known_args(argv)
    return frozenset(vars(bare))


# -- the reference tables of docs/configuration.md -------------------------------------------------


def _markdown(doc: str) -> str:
    """A docstring as a table cell: ``x`` and :role:`~a.b.x` as `x`, no pipes, one line."""
    text = re.sub(r":\w+:`~?(?:[\w.]+\.)?([^`.]+)`", r"`\1`", doc)
    return text.replace("``", "`").replace("|", "\\|")


def reference() -> dict[str, str]:
    """Per section, its table of keys for docs/configuration.md (key, default, meaning): every
    section any configured command reads, a key's default per command where they differ."""
    from a2a_grpc.settings import describe

    rows: dict[str, dict[str, list[tuple[str, str]]]] = {}  # section -> key -> [(command, default)]
    docs: dict[tuple[str, str], str] = {}
    for command in COMMANDS:
        for section in sections_of(command):
            keys = rows.setdefault(section.name, {})
            for name, default, doc in describe(section):
                keys.setdefault(name, []).append((command, default))
                docs.setdefault((section.name, name), doc)
    tables = {}
    for section_name, keys in rows.items():
        lines = ["| key | default | meaning |", "| --- | --- | --- |"]
        for name, defaults in keys.items():
            if len({d for _, d in defaults}) == 1:
                shown = f"`{defaults[0][1]}`"
            else:
                shown = "; ".join(f"`{d}` ({c})" for c, d in defaults)
            lines.append(f"| `{name}` | {shown} | {_markdown(docs[(section_name, name)])} |")
        tables[section_name] = "\n".join(lines)
    return tables


TABLE_START = "<!-- keys of {} (python tools/config_tables.py writes this table) -->"
TABLE_END = "<!-- end of keys -->"


def with_tables(page: str) -> str:
    """``page`` (docs/configuration.md) with each section's table written afresh between its
    markers; ValueError naming a section whose markers are missing."""
    for name, table in reference().items():
        start = TABLE_START.format(name)
        before, found, rest = page.partition(start)
        if not found:
            raise ValueError(f"docs/configuration.md has no table of section {name}: add {start}")
        _, end, after = rest.partition(TABLE_END)
        if not end:
            raise ValueError(f"the table of section {name} has no {TABLE_END}")
        page = f"{before}{start}\n{table}\n{TABLE_END}{after}"
    return page
