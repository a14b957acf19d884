"""Rates per principal and per tenant (``Limits.rate_per_principal``, ``rate_per_tenant``): a caller
over its rate is refused with retry guidance on every binding (gRPC RESOURCE_EXHAUSTED with
RetryInfo, HTTP 429 with Retry-After, the body naming the limit), streaming and session calls
spend the same rate, tenants are isolated, and another principal's echo stays fast while one
hammers. Without a configured rate nothing joins the call seam."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from a2a_grpc import errors, types
from a2a_grpc.bridge import transcoding
from a2a_grpc.bridge.grpcfront import GrpcFront
from a2a_grpc.bridge.outbound import JsonRpcUpstream
from a2a_grpc.client import A2AClient, ClientSettings
from a2a_grpc.security.identity import Principal
from a2a_grpc.security.limits import Limits
from a2a_grpc.security.quota import Quotas
from a2a_grpc.server import ServerSettings
from a2a_grpc.service import CallContext
from tests.quota_peers import ONCE, grpc_client, headers_of, percentiles, raw_call, serve_limited

ASYNC = pytest.mark.asyncio


async def spend_until_refused(binding: str, stack: Any, name: str, *, at_most: int, tenant: str = "") -> Any:
    """Calls by ``name`` until one is refused; (calls that passed, the refusal)."""
    for passed in range(at_most):
        outcome = await raw_call(binding, stack, name, tenant=tenant)
        if not outcome.ok:
            return passed, outcome
    raise AssertionError(f"{at_most} calls and no refusal")


async def typed_until_refused(call: Callable[[], Awaitable[object]], *, at_most: int) -> tuple[int, Any]:
    """``call()`` until it raises RateLimitedError; (calls that passed, the error)."""
    for passed in range(at_most):
        try:
            await call()
        except errors.RateLimitedError as exc:
            return passed, exc
    raise AssertionError(f"{at_most} calls and no refusal")


async def read_stream(events: Any) -> None:
    async with contextlib.aclosing(events) as stream:
        async for _event in stream:
            pass


@ASYNC
@pytest.mark.parametrize("binding", ["grpc", "jsonrpc", "rest"])
async def test_over_its_rate_a_caller_is_refused_with_retry_guidance_and_others_go_on(binding: str) -> None:
    async with serve_limited(Limits(rate_per_principal="5/minute")) as stack:
        passed, refusal = await spend_until_refused(binding, stack, "alice", at_most=8)
        # 5 per window; one more at most where a window turns (the counter weighs the last one).
        assert passed in (5, 6)
        assert refusal.status == ("RESOURCE_EXHAUSTED" if binding == "grpc" else 429)
        assert refusal.limit == "rate_per_principal"
        assert refusal.retry_after is not None
        assert 1 <= refusal.retry_after <= 60
        # The typed error, through this library's client, says the same.
        if binding == "grpc":
            async with grpc_client(stack, "alice") as client:
                with pytest.raises(errors.RateLimitedError) as caught:
                    await client.list_tasks()
            assert caught.value.limit == "rate_per_principal"
            assert caught.value.metadata["limit_value"] == "5/minute"
            assert caught.value.retry_after is not None
            assert 1 <= caught.value.retry_after <= 60
        # Another principal is not held to alice's count, and can echo right after.
        assert (await raw_call(binding, stack, "bob")).ok
        echoed = await raw_call(binding, stack, "bob", text="echo still here")
        assert echoed.ok


@ASYNC
async def test_another_principals_echo_stays_fast_while_one_hammers_past_its_rate() -> None:
    async with (
        serve_limited(Limits(rate_per_principal="40/minute")) as stack,
        grpc_client(stack, "alice") as alice,
        grpc_client(stack, "bob") as bob,
    ):

        async def echoes() -> list[float]:
            """Bob's echo latencies, 15 in a row (both measurements stay within his rate)."""
            latencies = []
            for i in range(15):
                start = time.perf_counter()
                response = await bob.send_message(A2AClient.text_request(f"echo {i}"))
                latencies.append(time.perf_counter() - start)
                assert response.task.artifacts[0].parts[0].text == f"echo {i}"
            return latencies

        quiet = percentiles(await echoes())
        refused = 0
        hammering = True

        async def hammer() -> None:
            nonlocal refused
            while hammering:
                results = await asyncio.gather(
                    *(alice.list_tasks() for _ in range(50)), return_exceptions=True
                )
                for result in results:
                    if isinstance(result, errors.RateLimitedError):
                        refused += 1
                    elif isinstance(result, BaseException):
                        raise result

        hammerer = asyncio.create_task(hammer())
        try:
            await asyncio.sleep(0.2)  # alice is past her rate and still calling
            latencies = await echoes()
        finally:
            hammering = False
            await asyncio.wait_for(hammerer, 30)
        p50, p99 = percentiles(latencies)
        print(
            f"\nbob's echo alone: p50 {quiet[0] * 1000:.1f} ms, p99 {quiet[1] * 1000:.1f} ms; "
            f"while alice is refused ({refused} refusals): p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms"
        )
        assert refused > 100  # she really hammered
        assert p99 < 1.0  # generous: a starved caller waits seconds


@ASYNC
async def test_a_tenant_shares_one_rate_among_its_principals_and_tenants_are_isolated() -> None:
    async with serve_limited(Limits(rate_per_tenant="4/minute")) as stack:
        passed, refusal = await spend_until_refused("grpc", stack, "alice", at_most=6, tenant="t1")
        assert passed in (4, 5)
        assert refusal.limit == "rate_per_tenant"
        assert refusal.retry_after is not None
        assert 1 <= refusal.retry_after <= 60
        # bob in the same tenant: the same budget, spent; on the JSON bindings too.
        for binding in ("grpc", "jsonrpc", "rest"):
            shared = await raw_call(binding, stack, "bob", tenant="t1")
            assert not shared.ok
            assert shared.limit == "rate_per_tenant"
            assert shared.retry_after is not None
        # Another tenant has its own; carol's credential binds her to acme.
        assert (await raw_call("grpc", stack, "bob", tenant="t2")).ok
        assert (await raw_call("rest", stack, "carol", text="echo acme")).ok


@ASYNC
async def test_streaming_and_session_calls_spend_the_same_rate() -> None:
    async with serve_limited(Limits(rate_per_principal="3/minute")) as stack:
        async with grpc_client(stack, "alice") as alice:
            streamed, refusal = await typed_until_refused(
                lambda: read_stream(alice.send_streaming_message(A2AClient.text_request("stream 1"))),
                at_most=6,
            )
            assert streamed in (3, 4)
            assert refusal.limit == "rate_per_principal"
        # The JSON-RPC stream is refused before its first event: one JSON answer, 429, Retry-After.
        envelope = {
            "jsonrpc": "2.0",
            "id": 7,
            "method": "SendStreamingMessage",
            "params": transcoding.encode(A2AClient.text_request("stream 1")),
        }
        headers = {
            **headers_of("alice"),
            "A2A-Version": "1.0",
            "accept": "text/event-stream",
            "content-type": "application/json",
        }
        async with httpx.AsyncClient(base_url=stack.url, timeout=10) as http:
            response = await http.post("/", content=json.dumps(envelope), headers=headers)
            assert response.status_code == 429
            assert int(response.headers["retry-after"]) >= 1
            assert response.json()["error"]["data"][0]["metadata"]["limit"] == "rate_per_principal"
            rest = await http.post(
                "/message:stream",
                content=json.dumps(transcoding.encode(A2AClient.text_request("stream 1"))),
                headers=headers,
            )
            assert rest.status_code == 429
            assert int(rest.headers["retry-after"]) >= 1
        # Each call of a session passes the seam: bob's session meets bob's rate.
        async with grpc_client(stack, "bob") as bob, bob.session() as session:
            answered, refusal = await typed_until_refused(
                lambda: session.send_message(A2AClient.text_request("echo")), at_most=6
            )
            assert answered in (3, 4)
            assert refusal.limit == "rate_per_principal"
            assert refusal.retry_after is not None
        async with grpc_client(stack, "carol") as carol:  # and the server goes on for others
            reply = await carol.send_message(A2AClient.text_request("echo after"))
            assert reply.task.artifacts[0].parts[0].text == "echo after"


@ASYNC
async def test_waiting_as_advised_lets_the_next_call_in() -> None:
    async with (
        serve_limited(Limits(rate_per_principal="2/second")) as stack,
        grpc_client(stack, "alice") as alice,
    ):
        _, refusal = await typed_until_refused(alice.list_tasks, at_most=5)
        for _attempt in range(3):  # the window's counter is approximate: at most a little more wait
            advice = refusal.retry_after
            assert advice is not None
            assert 1 <= advice <= 2
            await asyncio.sleep(advice)
            try:
                await alice.list_tasks()
                break
            except errors.RateLimitedError as again:
                refusal = again
        else:
            raise AssertionError("waiting as advised three times never let a call in")


@ASYNC
async def test_the_default_client_waits_as_advised_and_its_call_gets_in() -> None:
    async with (
        serve_limited(Limits(rate_per_principal="2/second")) as stack,
        grpc_client(stack, "alice") as once,
        grpc_client(stack, "alice", settings=ClientSettings()) as patient,
    ):
        await typed_until_refused(once.list_tasks, at_most=5)
        # The same principal's default client is refused too, waits the advised second(s) and
        # tries again: the call succeeds without the application seeing the refusal.
        answer = await patient.list_tasks()
        assert isinstance(answer, types.ListTasksResponse)


@ASYNC
async def test_without_authentication_every_caller_shares_the_anonymous_budget() -> None:
    async with serve_limited(Limits(rate_per_principal="3/minute"), authenticated=False) as stack:
        async with A2AClient(stack.address, timeout=10, settings=ONCE) as first:
            await typed_until_refused(first.list_tasks, at_most=5)
        # A new connection, the same nobody.
        async with A2AClient(stack.address, timeout=10, settings=ONCE) as second:
            with pytest.raises(errors.RateLimitedError) as caught:
                await second.list_tasks()
        assert caught.value.limit == "rate_per_principal"


@ASYNC
async def test_without_a_rate_nothing_joins_the_seam_and_with_one_the_check_is_cheap() -> None:
    plain = Quotas(Limits()).links()
    assert len(plain) == 1  # the stream count only: unary calls pass no quota link at all
    assert type(plain[0]).unary is type(plain[0]).__mro__[-2].unary  # the Interceptor default
    quotas = Quotas(Limits(rate_per_principal="1000000/second", rate_per_tenant="1000000/second"))
    rates = quotas._rates
    context = CallContext(principal=Principal("alice", scheme="apiKey"), tenant="t1")
    await rates.check(context)  # the storage is built on first use
    calls = 20_000
    start = time.perf_counter()
    for _ in range(calls):
        await rates.check(context)
    per_call = (time.perf_counter() - start) / calls
    print(f"\nrate check (principal and tenant, memory storage): {per_call * 1e6:.1f} µs per call")
    assert per_call < 1e-3  # generous: a call costs ~1 ms end to end on this machine


def test_rates_and_their_storage_are_validated_naming_the_setting() -> None:
    for field, value in [
        ("rate_per_principal", "often"),
        ("rate_per_tenant", "5 per fortnight"),
        ("rate_storage", "memory://"),
        ("rate_storage", "async+nowhere://x"),
    ]:
        with pytest.raises(ValueError, match=field):
            Limits(**{field: value})
    assert Limits(rate_per_principal="20/second;1000/minute").rate_per_principal == "20/second;1000/minute"


@ASYNC
async def test_the_reverse_bridge_holds_its_callers_to_the_rate_before_forwarding() -> None:
    # An upstream that is not there: a forwarded call is UNAVAILABLE, a refused one never leaves.
    upstream = JsonRpcUpstream("http://127.0.0.1:1/", card=types.AgentCard(name="nowhere"))
    settings = ServerSettings(host="127.0.0.1", port=0, limits=Limits(rate_per_principal="2/minute"))
    try:
        async with (
            GrpcFront(upstream, settings) as front,
            A2AClient(front.address, timeout=10, settings=ONCE) as client,
        ):
            outcomes = []
            for _ in range(4):
                try:
                    await client.get_task("t-1")
                except errors.A2AError as exc:
                    outcomes.append(type(exc))
            assert outcomes[:2] == [errors.UnavailableError] * 2
            assert outcomes[-1] is errors.RateLimitedError
    finally:
        await upstream.aclose()
