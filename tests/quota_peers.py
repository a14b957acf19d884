"""Peers for the rate-limit and quota tests: an agent served with chosen ``Limits`` and API keys
(alice and bob in any tenant, carol bound to tenant ``acme``), gRPC and both JSON bindings, and
raw callers that show how a refusal looks on each wire (status, headers, details)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import statistics
from collections.abc import AsyncIterator
from typing import Any

import grpc
import httpx
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]

from a2a_grpc import types
from a2a_grpc.bridge import transcoding
from a2a_grpc.client import A2AClient, ClientSettings
from a2a_grpc.resilience import ResiliencePolicy
from a2a_grpc.security import ApiKey, ApiKeyScheme, Authentication
from a2a_grpc.security.limits import Limits
from a2a_grpc.session.negotiation import SessionSettings
from tests.bridge_peers import Stack, serve_stack

__all__ = ["KEYS", "RawRefusal", "grpc_client", "headers_of", "percentiles", "raw_call", "serve_limited"]

KEYS = {
    "alice": "alice-key-0123456789abcdef",
    "bob": "bob-key-0123456789abcdef01",
    "carol": "carol-key-0123456789abcdef",
}
TIMEOUT = 10.0


def authentication() -> Authentication:
    keys = [ApiKey(name, key=value, tenant="acme" if name == "carol" else "") for name, value in KEYS.items()]
    return Authentication([ApiKeyScheme(keys)])


def headers_of(name: str) -> dict[str, str]:
    return {"X-API-Key": KEYS[name]}


ONCE = ClientSettings(resilience=ResiliencePolicy(max_attempts=1))
"""A client that tries once: these tests look at the server's refusals, which the default client
would wait out and retry (``tests/test_rate_limits.py`` shows that too)."""


def grpc_client(stack: Stack, name: str, **options: Any) -> A2AClient:
    options.setdefault("settings", ONCE)
    return A2AClient(stack.address, metadata=(("x-api-key", KEYS[name]),), timeout=TIMEOUT, **options)


@contextlib.asynccontextmanager
async def serve_limited(
    limits: Limits, *, session: SessionSettings | None = None, authenticated: bool = True
) -> AsyncIterator[Stack]:
    """The reference agent over gRPC and the in-process bridge (as ``a2a-grpc serve --http-port 0``),
    every call held to ``limits``; with ``authenticated``, the API keys of :data:`KEYS`."""
    async with serve_stack(
        authentication=authentication() if authenticated else None,
        limits=limits,
        session=session or SessionSettings(),
        grace_seconds=0.5,
    ) as stack:
        yield stack


@dataclasses.dataclass
class RawRefusal:
    """How one call looked on its wire: a success (``ok``) or the refusal's particulars."""

    ok: bool
    status: int | str = 0
    """The HTTP status, or the gRPC code's name."""
    retry_after: int | None = None
    """``Retry-After`` (HTTP) or the RetryInfo delay (gRPC), in seconds."""
    limit: str = ""
    """The ErrorInfo metadata's ``limit``."""
    body: Any = None


def _error_info_limit(details: Any) -> str:
    for detail in details:
        if detail.get("@type", "").endswith("google.rpc.ErrorInfo"):
            return str(detail.get("metadata", {}).get("limit", ""))
    return ""


async def raw_call(binding: str, stack: Stack, name: str, *, tenant: str = "", text: str = "") -> RawRefusal:
    """One call, ``SendMessage`` of ``text`` or else ``ListTasks``, by ``name`` over ``binding``,
    read off the wire without this library's client."""
    request: Any = (
        A2AClient.text_request(text, tenant=tenant) if text else types.ListTasksRequest(tenant=tenant)
    )
    method = "SendMessage" if text else "ListTasks"
    if binding == "grpc":
        response_type = types.SendMessageResponse if text else types.ListTasksResponse
        async with grpc.aio.insecure_channel(stack.address) as channel:
            call = channel.unary_unary(
                f"/lf.a2a.v1.A2AService/{method}",
                request_serializer=type(request).SerializeToString,
                response_deserializer=response_type.FromString,
            )
            metadata = (("x-api-key", KEYS[name]), ("a2a-version", "1.0"))
            try:
                await call(request, metadata=metadata, timeout=TIMEOUT)
            except grpc.aio.AioRpcError as exc:
                trailers = dict(exc.trailing_metadata() or ())
                rich = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
                retry, info, delay = error_details_pb2.RetryInfo(), error_details_pb2.ErrorInfo(), None
                limit = ""
                for detail in rich.details:
                    if detail.Unpack(retry):
                        delay = retry.retry_delay.seconds
                    elif detail.Unpack(info):
                        limit = info.metadata.get("limit", "")
                return RawRefusal(False, exc.code().name, delay, limit, exc.details())
            return RawRefusal(True)
    headers = {**headers_of(name), "A2A-Version": "1.0", "content-type": "application/json"}
    async with httpx.AsyncClient(base_url=stack.url, timeout=TIMEOUT) as http:
        if binding == "jsonrpc":
            envelope = {"jsonrpc": "2.0", "id": 1, "method": method, "params": transcoding.encode(request)}
            response = await http.post("/", content=json.dumps(envelope), headers=headers)
            body = response.json()
            if "error" not in body:
                return RawRefusal(True, response.status_code)
            limit = _error_info_limit(body["error"].get("data", []))
        else:
            prefix = f"/{tenant}" if tenant else ""
            if text:
                members = transcoding.encode(request)
                members.pop("tenant", None)
                response = await http.post(
                    f"{prefix}/message:send", content=json.dumps(members), headers=headers
                )
            else:
                response = await http.get(f"{prefix}/tasks", headers=headers)
            body = response.json()
            if response.status_code == 200:
                return RawRefusal(True, 200)
            limit = _error_info_limit(body["error"].get("details", []))
        after = response.headers.get("retry-after")
        return RawRefusal(False, response.status_code, int(after) if after else None, limit, body)


def percentiles(samples: list[float]) -> tuple[float, float]:
    """p50 and p99 of ``samples`` (seconds)."""
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered), p99
