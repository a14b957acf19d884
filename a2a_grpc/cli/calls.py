"""``a2a-grpc send``, ``card`` and ``tasks``: a client of one agent, for humans and scripts.

The agent is a gRPC ``HOST:PORT``, or an http(s) URL whose agent card names a gRPC interface:
the first GRPC interface of the card is used, and its tenant goes into every request.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from google.protobuf import json_format

from a2a_grpc import errors, types
from a2a_grpc.cli.common import CliError, is_url, to_json
from a2a_grpc.cli.security import credentials_from
from a2a_grpc.cli.tls import caller_tls
from a2a_grpc.security.redact import redact_userinfo, scrub_urls

__all__ = ["bench", "card", "send", "tasks"]


async def open_client(address: str, timeout: float, tls: Any = None) -> Any:
    """A client of ``address``: a gRPC target, or the first GRPC interface of the card at a URL;
    over TLS with ``tls`` (a ClientTls). Credentials come from the environment
    (``A2A_GRPC_API_KEY``, ``A2A_GRPC_BEARER_TOKEN``); with a card, only what it asks for is sent."""
    from a2a_grpc.client import A2AClient

    credentials = credentials_from()
    if not is_url(address):
        return A2AClient(address, timeout=timeout, credentials=credentials, tls=tls or False)
    from a2a_grpc.cli.serving import fetch_card

    found = await fetch_card(address, timeout, tls)
    try:
        return A2AClient.from_card(found, timeout=timeout, credentials=credentials, tls=tls or False)
    except errors.UnavailableError as exc:
        shown = redact_userinfo(address)
        raise CliError(
            f"the card at {shown}: {exc.message}; put gRPC in front of it with  "
            f"a2a-grpc bridge grpc-to-http --upstream {shown}"
        ) from None
    except ValueError as exc:
        raise CliError(f"the card at {redact_userinfo(address)}: {scrub_urls(str(exc))}") from None


async def with_client(args: argparse.Namespace, action: Callable[[Any], Awaitable[int]]) -> int:
    client = await open_client(args.address, args.timeout, caller_tls(args))
    async with client:
        return await action(client)


async def send(args: argparse.Namespace) -> int:
    from a2a_grpc.client import A2AClient

    request = A2AClient.message_request(
        args.text,
        task_id=args.task_id or "",
        context_id=args.context_id or "",
        return_immediately=args.return_immediately,
        history_length=args.history_length,
    )

    async def over(calls: Any) -> int:
        if args.stream:
            async for event in calls.send_streaming_message(request, timeout=args.timeout):
                print(json.dumps(json_format.MessageToDict(event)), flush=True)
        else:
            print(to_json(await calls.send_message(request)))
        return 0

    async def run(client: A2AClient) -> int:
        if not (args.session or args.show_handshake):
            return await over(client)
        async with client.session() as session:
            if args.show_handshake:
                show_handshake(session)
            return await over(session)

    return await with_client(args, run)


def show_handshake(session: Any) -> None:
    """Print a session's Hello and Welcome to stderr, one JSON object each, redacted as the debug
    log and the debug endpoints show them (credentials and the resume token hidden)."""
    from a2a_grpc.observability.debuglog import hello_view, welcome_view

    for name, shown in (
        ("hello", hello_view(session.options.hello())),
        ("welcome", welcome_view(session.welcome)),
    ):
        print(json.dumps({name: shown}), file=sys.stderr, flush=True)


async def card(args: argparse.Namespace) -> int:
    if is_url(args.address) and not args.extended:  # the public card, as published there
        from a2a_grpc.cli.serving import fetch_card

        print(to_json(await fetch_card(args.address, args.timeout, caller_tls(args))))
        return 0

    async def run(client: Any) -> int:
        if args.extended:
            print(to_json(await client.get_extended_agent_card()))
            return 0
        try:
            found = await client.get_agent_card()
        except errors.MethodNotFoundError:
            # Not an a2a-grpc server: A2A's gRPC binding has no public card, only the extended one.
            print(
                "a2a-grpc: the agent serves no public card over gRPC (it is not an a2a-grpc server); "
                "printing its extended card",
                file=sys.stderr,
                flush=True,
            )
            found = await client.get_extended_agent_card()
        print(to_json(found))
        return 0

    return await with_client(args, run)


async def tasks(args: argparse.Namespace) -> int:
    async def run(client: Any) -> int:
        if args.tasks_command == "get":
            print(to_json(await client.get_task(args.id, history_length=args.history_length)))
        elif args.tasks_command == "cancel":
            from a2a_grpc.tasks import trim_task

            task = await client.cancel_task(args.id)
            # CancelTaskRequest has no history_length: the trim happens here.
            print(to_json(trim_task(task, args.history_length)))
        else:
            request = types.ListTasksRequest(
                context_id=args.context_id or "", page_token=args.page_token or ""
            )
            if args.status:
                name = args.status.upper()
                name = name if name.startswith("TASK_STATE_") else "TASK_STATE_" + name
                known = types.TaskState.DESCRIPTOR.values_by_name
                if name not in known:
                    choices = ", ".join(k.removeprefix("TASK_STATE_").lower() for k in known)
                    raise CliError(f"unknown status {args.status!r}; one of {choices}")
                request.status = known[name].number  # type: ignore[assignment]
            if args.page_size is not None:
                request.page_size = args.page_size
            print(to_json(await client.list_tasks(request)))
        return 0

    return await with_client(args, run)


def bench(argv: list[str]) -> int:
    """``a2a-grpc bench``: the benchmark harness (``benchmarks/``), with its own options."""
    try:
        from benchmarks import main as run_benchmarks
    except ImportError as exc:
        print(
            f"a2a-grpc: error: the benchmarks need the development install (make install): {exc}",
            file=sys.stderr,
        )
        return 1
    return int(run_benchmarks(argv))
