"""``a2a-grpc serve`` and ``a2a-grpc bridge``: the long-running commands.

The command line is the composition root: the one place that puts the runtime (``a2a_grpc``)
and the bridge (``bridge``) together. Heavy imports happen inside the commands, so ``--help``
and the client commands start fast.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import importlib
import os
import sys
from collections.abc import Awaitable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from a2a_grpc import errors, types
from a2a_grpc.cli.common import (
    CliError,
    dial_address,
    failure,
    is_url,
    os_reason,
    require_http_extra,
    say,
    self_command,
    shown,
    until_signal,
)
from a2a_grpc.cli.config import DEFAULT_STORE, show
from a2a_grpc.cli.registry import start_registration, stop_registration
from a2a_grpc.cli.security import authentication_from, credentials_from, listening_audience
from a2a_grpc.cli.tls import caller_tls, listener_tls
from a2a_grpc.cli.workers import Supervisor, WorkerRole, reserve_port, worker_count
from a2a_grpc.security.authentication import Unprotected, is_loopback
from a2a_grpc.security.credentials import credential_headers
from a2a_grpc.security.redact import redact_userinfo
from a2a_grpc.service import SUPPORTED_VERSIONS

if TYPE_CHECKING:
    from a2a_grpc.settings import Configuration

__all__ = [
    "DEFAULT_STORE",
    "bridge_grpc_to_http",
    "bridge_http_to_grpc",
    "config_show",
    "fetch_card",
    "load_agent",
    "serve",
    "supervise",
]


def load_agent(spec: str, app_dir: str = ".") -> Any:
    """The agent named ``module:attribute``, importing ``module`` from ``app_dir`` first."""
    from a2a_grpc.agent import Agent

    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise CliError(f"--agent must look like module:attribute, not {spec!r}")
    directory = os.path.abspath(app_dir)
    if not os.path.isdir(directory):
        raise CliError(f"--app-dir {app_dir!r} is not a directory")
    # Like uvicorn's --app-dir: the user's own module is found from where they stand. An entry
    # point script puts only its own bin/ directory on sys.path.
    if directory not in sys.path[:1]:
        sys.path.insert(0, directory)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        where = "the current directory" if directory == os.getcwd() else shown(directory)
        if missing == module_name or module_name.startswith(missing + "."):
            raise CliError(
                f"cannot import {module_name!r}: no module {missing!r} in {where} or on the "
                "Python path (--app-dir DIR says where to look)"
            ) from None
        raise CliError(failure(f"importing {module_name!r} failed", exc)) from None
    except Exception as exc:
        raise CliError(failure(f"importing {module_name!r} failed", exc)) from None
    try:
        obj = getattr(module, attr)
    except AttributeError:
        raise CliError(f"module {module_name!r} has no attribute {attr!r}") from None
    try:
        agent = obj() if isinstance(obj, type) else obj
    except Exception as exc:
        raise CliError(failure(f"creating the agent {spec} failed", exc)) from None
    if not isinstance(agent, Agent):
        raise CliError(f"{spec} is not an a2a_grpc.agent.Agent (or a class of one)")
    return agent


async def listening(start: Awaitable[object], host: str, port: int) -> None:
    """Await a server's start; a port it cannot take is one line (see common.os_reason)."""
    try:
        await start
    except OSError as exc:
        raise CliError(os_reason(exc)) from None
    except RuntimeError as exc:  # grpc's own refusal, when the trial bind did not foresee it
        raise CliError(f"cannot listen on {host}:{port}: {exc}") from None
    except Unprotected as exc:
        raise CliError(str(exc)) from None


def push_notifier(args: argparse.Namespace, config: Configuration) -> Any:
    """The notifier of ``serve``: its delivery settings (section ``push``), webhook policy and
    signing secret from the configuration."""
    from a2a_grpc.push import PushNotifier
    from a2a_grpc.security.webhooks import WebhookPolicy

    secret = None
    if args.webhook_signing_secret_file:
        path = args.webhook_signing_secret_file
        try:
            secret = Path(path).read_bytes().strip()
        except OSError as exc:
            raise CliError(f"cannot read the webhook signing secret {shown(path)}: {exc.strerror}") from None
    try:
        return PushNotifier(
            **config.section("push"),
            policy=WebhookPolicy(allow=tuple(args.webhook_allow)),
            signing_secret=secret,
        )
    except ValueError as exc:
        raise CliError(f"webhooks: {exc}") from None


def task_store(args: argparse.Namespace, config: Configuration) -> Any:
    """The task store of ``serve``: ``serve.store`` opened with the section ``store``."""
    from a2a_grpc.tasks import open_store

    try:
        return open_store(args.store, check_integrity=args.integrity_check, settings=config.built["store"])
    except (ValueError, OSError) as exc:
        raise CliError(str(exc)) from None


def server_settings(config: Configuration, **objects: Any) -> Any:
    """``ServerSettings`` from section ``server`` with the sections it holds (``session``,
    ``limits``, ``observability``, where the command reads them) and ``objects``."""
    held = {name: config.built[name] for name in ("session", "limits", "observability") if config.has(name)}
    return config.build("server", **held, **objects)


async def serve(args: argparse.Namespace) -> int:
    config: Configuration = args.config
    worker: WorkerRole | None = getattr(args, "worker", None)
    if worker is None:
        count = worker_count(config.value("serve.workers"))
        if count is not None:
            return await supervise(args, config, *count)
    else:
        worker.bind_to_parent()
        from a2a_grpc.observability.metrics import WORKER

        WORKER.labels(worker=str(worker.index)).set(1)
        args.integrity_check = args.integrity_check and not worker.store_checked
    http = config.section("http")
    if worker is not None and http["port"] is not None:
        http["port"] = worker.http_port
    if http["port"] is not None:
        require_http_extra("--http-port")
    from a2a_grpc.bridge.stack import AgentStack

    agent = load_agent(args.agent, args.app_dir)
    notifier = push_notifier(args, config)  # before the store: it holds no connection until it delivers
    minter = delegation(agent, args, config)
    tls = listener_tls(args)
    settings = server_settings(config, authentication=authentication_from(args), tls=tls)
    if worker is not None:
        settings = worker.adapt(settings)
    bridge = config.build("bridge", jwks=minter.jwks() if minter is not None else None)
    store = task_store(args, config)
    stack = AgentStack(
        agent,
        store,
        grpc=settings,
        http_port=http["port"],
        http_host=http["host"],
        bridge=bridge,
        notifier=notifier,
    )
    registration = None
    try:
        await listening(stack.start(), settings.host, settings.port)
        listening_audience(settings.authentication, stack.grpc_address, args)
        say(f"serving {agent.card.name!r} over gRPC at {stack.grpc_address}")
        if stack.http_url is not None:
            say(f"serving JSON-RPC and HTTP+JSON at {stack.http_url}")
        if stack.ops is not None:
            say(f"metrics and debug endpoints at {stack.ops.url}")
        interfaces = ", ".join(_shown(i) for i in stack.card.supported_interfaces)
        say(f"the card names {interfaces}")
        say(f"task store {getattr(store, 'shown', args.store)}")  # a Redis URL without its password
        auth = settings.authentication
        if auth is not None:
            say(f"authentication: {', '.join(s.name for s in auth.schemes)}")
        else:
            hosts = (settings.host, http["host"] or settings.host)
            why = "loopback only" if all(is_loopback(h) for h in hosts) else "--allow-unauthenticated"
            say(f"authentication: none ({why}: every caller reaches every task)")
        registration = await start_registration(config, stack.card, stack.grpc_address)
        assert stack.server is not None
        hint = f"{self_command()} send {dial_address(settings.host, stack.server.port)} 'hello'"
        if tls is not None:
            hint += " --tls-ca CA_FILE" + (
                " --tls-client-cert CERT --tls-client-key KEY" if tls.require_client_cert else ""
            )
        say(f"try  {hint}   (Ctrl-C stops)")
        if worker is not None:
            worker.ready()
        await until_signal(again=stack.hurry)
    finally:
        await stop_registration(registration)  # first: callers stop routing here before the drain
        await stack.stop()
        say("stopped")
        await notifier.aclose()  # given to the stack, so not closed by it
        await store.close()
    return 0


async def supervise(args: argparse.Namespace, config: Configuration, count: int, why: str) -> int:
    """``serve --workers``: ``count`` workers on the same ports under a supervisor (a2a_grpc.cli.workers)."""
    if not sys.platform.startswith("linux"):
        raise CliError(
            "--workers needs Linux: only there does SO_REUSEPORT spread connections over processes"
        )
    if args.store in ("memory", "memory://"):
        raise CliError(
            f"{count} workers need a task store they share (sqlite:///PATH or redis://...): "
            "the memory store lives inside one process"
        )
    http = config.section("http")
    if http["port"] is not None:
        require_http_extra("--http-port")
    host, grace = config.value("server.host"), config.value("server.grace_seconds")
    metrics_port = config.value("observability.metrics_port")
    if metrics_port and metrics_port + count - 1 > 65535:
        raise CliError(
            f"--metrics-port {metrics_port}: {count} workers take ports up to {metrics_port + count - 1}"
        )
    # Opened (created, migrated, checked) once here, so that the workers do not race to do it.
    store = task_store(args, config)
    shown_store = getattr(store, "shown", args.store)  # a Redis URL without its password
    await store.close()
    held, grpc_port = reserve_port(host, config.value("server.port"))
    try:
        http_port = None
        if http["port"] is not None:
            more, http_port = reserve_port(http["host"] or host, http["port"])
            held += more
        address = dial_address(host, grpc_port)
        shared = f"gRPC {address}" + (f" and HTTP port {http_port}" if http_port is not None else "")
        workers = f"{count} worker{'s' if count != 1 else ''}"
        say(f"starting {workers} ({why}) sharing {shared}; task store {shown_store}")
        supervisor = Supervisor(
            list(args.argv),
            count,
            grpc_port=grpc_port,
            http_port=http_port,
            address=address,
            grace=grace,
            store_checked=True,
        )
        code = await supervisor.run()
    finally:
        for sock in held:
            sock.close()
    if supervisor.failure is not None:
        raise CliError(supervisor.failure)
    say("stopped" if code == 0 else "stopped; a worker did not stop cleanly (see above)")
    return code


def delegation(agent: Any, args: argparse.Namespace, config: Configuration) -> Any:
    """Give the reference agent its delegation policy (--delegate-allow, the caller TLS options,
    --delegation-key, the section ``peers``); the token minter, if any (its public keys are
    published)."""
    from a2a_grpc.reference_agent import DelegationPolicy, ReferenceAgent
    from a2a_grpc.security import DelegationMinter
    from a2a_grpc.settings import DEFAULT

    tls = caller_tls(args)
    if not isinstance(agent, ReferenceAgent):
        keys = [
            k
            for k, source in config.sources.items()
            if (k.startswith("peers.") or k == "serve.delegation_lifetime") and source != DEFAULT
        ]
        if args.delegate_allow or tls is not None or args.delegation_key or keys:
            raise CliError(
                "--delegate-allow, --delegation-key, serve.delegation_lifetime, the caller --tls options "
                "and the section peers configure the reference agent's delegate"
            )
        return None
    minter = None
    # null: the minter's own default
    lifetime = {"lifetime": args.delegation_lifetime} if args.delegation_lifetime is not None else {}
    if args.delegation_key:
        path = Path(args.delegation_key)
        try:
            minter = DelegationMinter.from_pem(
                path, issuer=args.delegation_issuer or agent.card.name, **lifetime
            )
        except OSError as exc:
            raise CliError(f"cannot read the delegation key {shown(str(path))}: {exc.strerror}") from None
        except ValueError as exc:
            raise CliError(f"--delegation-key {shown(str(path))}: {exc}") from None
    elif args.delegation_issuer:
        raise CliError("--delegation-issuer names the tokens --delegation-key mints: give that too")
    elif config.sources["serve.delegation_lifetime"] != DEFAULT:
        problem = "the lifetime of the tokens serve.delegation_key mints: give that too"
        raise config.refuse("serve.delegation_lifetime", problem)
    try:
        # Credentials for peers come from the environment, as for every client command.
        agent.delegation = DelegationPolicy(
            allow=args.delegate_allow,
            tls=tls,
            credentials=credentials_from(),
            tokens=minter,
            pool=config.built["peers"],
        )
    except ValueError as exc:
        raise CliError(f"--delegate-allow: {exc}") from None
    return minter


def bind_http(app: Any, host: str, port: int, reuse_port: bool, tls: Any = None) -> Any:
    # The composition root: the CLI is the one place that puts the bridge and the runtime together.
    from a2a_grpc.bridge.httpserver import HttpServer

    settings = app.settings  # a BridgeApp's: its connection bounds are the listener's
    http = HttpServer(
        app,
        host,
        port,
        reuse_port=reuse_port,
        tls=tls,
        header_timeout=settings.header_timeout_seconds,
        max_connections=settings.max_connections,
        grace=settings.shutdown_grace_seconds,
    )
    try:
        http.bind()
    except OSError as exc:
        raise CliError(os_reason(exc)) from None
    return http


async def fetch_card(source: str, timeout: float, tls: Any = None) -> types.AgentCard:
    """The agent card at an http(s) URL (a base URL gets the well-known path); ``tls`` (a
    ClientTls) says whom to trust and what to present."""
    require_http_extra("reading an agent card from a URL")
    import httpx

    from a2a_grpc.bridge.outbound import card_url_for, fetch_card

    async with httpx.AsyncClient(verify=tls.ssl_context() if tls is not None else True) as http:
        try:
            return await fetch_card(card_url_for(source), client=http, timeout=timeout)
        except errors.A2AError as exc:
            raise CliError(f"cannot use the card at {redact_userinfo(source)}: {exc.message}") from None


async def card_source(source: str, timeout: float, tls: Any = None) -> types.AgentCard:
    """An agent card from a JSON file or an http(s) URL (a base URL gets the well-known path); a
    v0.3 card is read as our card, its interfaces with protocol version 0.3."""
    from a2a_grpc.bridge import transcoding

    if is_url(source):
        return await fetch_card(source, timeout, tls)
    try:
        body = await asyncio.to_thread(Path(source).read_bytes)
    except OSError as exc:
        raise CliError(f"cannot read the card file {source}: {exc.strerror}") from None
    try:
        data = transcoding.loads(body)
        if isinstance(data, dict) and "supportedInterfaces" not in data and "url" in data:
            from a2a_grpc.v03.card import parse_card_json

            return parse_card_json(data)  # a v0.3 card
        return transcoding.from_json(body, types.AgentCard)
    except errors.A2AError as exc:
        raise CliError(f"{source} is not an A2A agent card: {exc.message}") from None


async def bridge_http_to_grpc(args: argparse.Namespace) -> int:
    require_http_extra("a2a-grpc bridge")
    from a2a_grpc.bridge.app import BridgeApp
    from a2a_grpc.bridge.ops import OpsApp, ops_server
    from a2a_grpc.bridge.upstream import GrpcUpstream

    config: Configuration = args.config
    http_config = config.section("http")
    host, port, reuse_port = http_config["host"], http_config["port"], http_config["reuse_port"]
    tls, upstream_tls = listener_tls(args), caller_tls(args)
    client_settings = config.build("client", resilience=config.built["resilience"])
    # client.connect_timeout (--timeout) bounds every wait at start: the connection, and the card.
    timeout = client_settings.connect_timeout
    card_file = config.value("upstream.card")
    card = await card_source(card_file, timeout, upstream_tls) if card_file else None
    upstream = GrpcUpstream(args.upstream, card=card, settings=client_settings, tls=upstream_tls)
    http = ops = None
    traced = False
    try:
        await upstream.wait_ready()
        if card is None:
            try:
                card = await upstream.card()
            except errors.A2AError as exc:
                raise CliError(
                    f"the upstream at {args.upstream} gave no card over gRPC ({type(exc).__name__}: "
                    f"{exc.message}); pass --card FILE|URL"
                ) from None
            if upstream.card_source == "GetExtendedAgentCard":
                print(
                    "a2a-grpc: the upstream serves no public card over gRPC: publishing its extended "
                    "card (GetExtendedAgentCard); pass --card to publish a public one",
                    flush=True,
                )
        settings = config.build("bridge")
        # The headers that carry the credentials the upstream's card asks for (an API key's) cross.
        forwarded = (*settings.forward_headers, *credential_headers(card))
        observability = config.built["observability"]
        if observability.spans:  # no seam here: the spans are the upstream calls' (CLIENT spans)
            from a2a_grpc.observability import spans

            spans.setup(observability, card.name)  # the SDK is there: checked before the command ran
            traced = True
        app = BridgeApp(
            upstream,
            dataclasses.replace(settings, forward_headers=forwarded),
            ops=OpsApp(metrics=observability.metrics),
        )
        http = bind_http(app, host or "127.0.0.1", 8080 if port is None else port, reuse_port, tls)
        if app.public_url is None:
            app.public_url = http.url
        await http.start()
        print(f"a2a-grpc: bridging JSON-RPC and HTTP+JSON at {http.url} to gRPC {args.upstream}", flush=True)
        ops = ops_server(observability)  # this process has no sessions: metrics only
        if ops is not None:
            await listening(ops.start(), observability.metrics_host, observability.metrics_port)
            print(f"a2a-grpc: metrics at {ops.url}/metrics", flush=True)
        await until_signal()
    finally:
        if ops is not None:
            await ops.stop()
        if http is not None:
            await http.stop()
        await upstream.aclose()
        if traced:
            from a2a_grpc.observability import spans

            await asyncio.to_thread(spans.release)
    return 0


async def bridge_grpc_to_http(args: argparse.Namespace) -> int:
    require_http_extra("a2a-grpc bridge")
    import httpx

    from a2a_grpc.bridge.grpcfront import GrpcFront
    from a2a_grpc.bridge.outbound import open_json_upstream

    config: Configuration = args.config
    tls, upstream_tls = listener_tls(args), caller_tls(args)
    settings = server_settings(config, tls=tls)
    # No per-read timeout: a call's deadline is the only bound (as open_json_upstream's own client).
    client = httpx.AsyncClient(timeout=None, verify=upstream_tls.ssl_context() if upstream_tls else True)
    try:
        upstream = await open_json_upstream(args.upstream, client=client, settings=config.built["outbound"])
    except BaseException:
        await client.aclose()
        raise
    front = GrpcFront(upstream, settings)
    try:
        await listening(front.start(), settings.host, settings.port)
        print(f"a2a-grpc: bridging gRPC at {front.address} to {redact_userinfo(args.upstream)}", flush=True)
        if front.ops is not None:
            print(f"a2a-grpc: metrics and debug endpoints at {front.ops.url}", flush=True)
        await until_signal(again=front.hurry)
    finally:
        await front.stop()
        await upstream.aclose()
        await client.aclose()
    return 0


async def config_show(args: argparse.Namespace) -> int:
    """``a2a-grpc config show [--json] [--config FILE] [COMMAND OPTIONS...]``."""
    from a2a_grpc.cli import parse
    from a2a_grpc.cli.config import COMMANDS, command_of, configuration

    argv = list(args.shown) or ["serve"]
    if args.config_file is not None:
        argv += ["--config", args.config_file]
    shown = parse(argv)
    if command_of(shown) is None:
        raise CliError(f"config show shows the configuration of {', '.join(COMMANDS)}, not of {argv[0]}")
    from a2a_grpc.settings import ConfigError

    try:
        config = configuration(shown, to_run=False)
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    print(show(config, args.json), flush=True)
    return 0


def _shown(interface: types.AgentInterface) -> str:
    """``BINDING URL``, and the A2A version when it is not the current one (the v0.3 twins)."""
    version = interface.protocol_version
    shown = f"{interface.protocol_binding} {interface.url}"
    return f"{shown} (A2A {version})" if version and version != SUPPORTED_VERSIONS[-1] else shown
