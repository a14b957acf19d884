"""Task-scoped delegation tokens: minted by the delegating agent, verified by the sub-agent on
every call (unary and session), each refusal naming the claim that failed; a token is useless for
any other task, skill, audience, or after its expiry. The reference agent's delegate uses them."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from a2a_grpc import errors, types
from a2a_grpc.bridge.settings import BridgeSettings
from a2a_grpc.bridge.stack import AgentStack
from a2a_grpc.client import A2AClient
from a2a_grpc.reference_agent import DelegationPolicy, ReferenceAgent
from a2a_grpc.security.authentication import Authentication
from a2a_grpc.security.delegation import (
    DELEGATION_HEADER,
    SKILL_HEADER,
    DelegationMinter,
    DelegationTokenScheme,
)
from tests.conftest import Served, serve, shutdown

ASYNC = pytest.mark.asyncio
ISSUER = "planner.mesh.test"
WAIT = 10.0


@contextlib.asynccontextmanager
async def sub_agent(minter: DelegationMinter, **extra: Any) -> AsyncIterator[tuple[Served, str]]:
    """The reference agent behind a scheme trusting ``minter``; yields it and its audience."""
    scheme = DelegationTokenScheme(issuer=ISSUER, audience=["not-yet-known"], jwks=minter.jwks(), **extra)
    served = await serve(ReferenceAgent(), authentication=Authentication([scheme]))
    audience = f"127.0.0.1:{served.server.port}"
    scheme.audience.append(audience)  # known once the port is
    try:
        yield served, audience
    finally:
        await shutdown(served)


def headers(token: str, skill: str | None = "echo") -> list[tuple[str, str]]:
    return [(DELEGATION_HEADER, token)] + ([(SKILL_HEADER, skill)] if skill is not None else [])


async def refusal(call: Any) -> errors.A2AError:
    with pytest.raises(errors.A2AError) as refused:
        await call
    return refused.value


# --- minting -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["EdDSA", "ES256"])
def test_a_minted_token_carries_its_binding_and_its_key_id(algorithm: str) -> None:
    minter = DelegationMinter.generate(issuer=ISSUER, algorithm=algorithm, lifetime=120)
    token = minter.mint(audience="sub:1", task_id="task-7", skill="echo")
    header = jwt.get_unverified_header(token)
    assert (header["alg"], header["kid"]) == (algorithm, minter.kid)
    (published,) = minter.jwks()["keys"]
    assert (published["kid"], published["alg"], published["use"]) == (minter.kid, algorithm, "sig")
    assert "d" not in published  # the public half only
    key = jwt.PyJWK.from_dict(published)
    claims = jwt.decode(token, key.key, algorithms=[algorithm], audience="sub:1")
    assert (claims["iss"], claims["a2a_task"], claims["a2a_skill"]) == (ISSUER, "task-7", "echo")
    assert 119 <= claims["exp"] - claims["iat"] <= 120
    assert claims["jti"]


def test_minting_refuses_what_cannot_be_a_delegation() -> None:
    minter = DelegationMinter.generate(issuer=ISSUER)
    with pytest.raises(ValueError, match="audience, a task id and a skill"):
        minter.mint(audience="", task_id="t", skill="echo")
    with pytest.raises(ValueError, match="EdDSA, ES256"):
        DelegationMinter.generate(issuer=ISSUER, algorithm="HS256")
    with pytest.raises(ValueError, match="issuer"):
        DelegationMinter.generate(issuer="")
    assert DelegationMinter.from_pem(_pem(), issuer=ISSUER).algorithm == "EdDSA"


def _pem() -> bytes:
    from cryptography.hazmat.primitives import serialization

    return ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


# --- verifying, on the unary binding ----------------------------------------------------------------


@ASYNC
async def test_the_right_token_is_accepted_and_its_task_is_its_own() -> None:
    minter = DelegationMinter.generate(issuer=ISSUER)
    async with sub_agent(minter) as (served, audience):
        token = minter.mint(audience=audience, task_id="planner-task-1", skill="echo")
        reply = await served.client.send_message(
            A2AClient.text_request("echo delegated"), metadata=headers(token)
        )
        task = reply.task
        assert task.status.state == types.TASK_STATE_COMPLETED
        assert task.artifacts[0].parts[0].text == "echo delegated"
        again = minter.mint(audience=audience, task_id="planner-task-1", skill="echo")  # same delegation
        assert (await served.client.get_task(task.id, metadata=headers(again, None))).id == task.id
        listed = await served.client.list_tasks(metadata=headers(again, None))
        assert [t.id for t in listed.tasks] == [task.id]


@ASYNC
async def test_a_token_for_another_task_is_refused_naming_the_task_claim_without_an_oracle() -> None:
    minter = DelegationMinter.generate(issuer=ISSUER)
    async with sub_agent(minter) as (served, audience):
        mine = minter.mint(audience=audience, task_id="planner-task-A", skill="echo")
        task = (
            await served.client.send_message(A2AClient.text_request("echo for A"), metadata=headers(mine))
        ).task
        leaked = minter.mint(audience=audience, task_id="planner-task-B", skill="echo")
        for task_id in (task.id, "no-such-task"):  # the same answer: nothing leaks
            error = await refusal(served.client.get_task(task_id, metadata=headers(leaked, None)))
            assert isinstance(error, errors.PermissionDeniedError), error
            assert "a2a_task" in error.message
            assert error.metadata["claim"] == "a2a_task"
        error = await refusal(served.client.cancel_task(task.id, metadata=headers(leaked, None)))
        assert isinstance(error, errors.PermissionDeniedError)
        with pytest.raises(errors.PermissionDeniedError, match="a2a_task"):
            async for _ in served.client.subscribe_to_task(task.id, metadata=headers(leaked, None)):
                pass
        follow_up = A2AClient.text_request("echo more")
        follow_up.message.task_id = task.id
        error = await refusal(served.client.send_message(follow_up, metadata=headers(leaked)))
        assert isinstance(error, errors.PermissionDeniedError)
        assert "a2a_task" in error.message
        assert (await served.client.list_tasks(metadata=headers(leaked, None))).tasks == []


@ASYNC
async def test_a_token_for_another_skill_is_refused_naming_the_skill_claim() -> None:
    minter = DelegationMinter.generate(issuer=ISSUER)
    async with sub_agent(minter) as (served, audience):
        token = minter.mint(audience=audience, task_id="planner-task-1", skill="echo")
        for declared in ("stream", None):  # another skill declared, or none
            error = await refusal(
                served.client.send_message(
                    A2AClient.text_request("stream 3"), metadata=headers(token, declared)
                )
            )
            assert isinstance(error, errors.PermissionDeniedError), error
            assert "a2a_skill" in error.message
        # Declaring the token's skill while asking for another skill's work: the agent refuses.
        error = await refusal(
            served.client.send_message(A2AClient.text_request("stream 3"), metadata=headers(token, "echo"))
        )
        assert isinstance(error, errors.PermissionDeniedError), error
        assert "invokes skill 'stream'" in error.message
        assert "a2a_skill" in error.message


def _forged(minter: DelegationMinter, audience: str, **changes: Any) -> str:
    """A token like the minter's with ``changes`` to its claims (None drops one), signed by
    ``changes['key']`` (default: a stranger's key) under ``changes['kid']`` (default: the minter's)."""
    key = changes.pop("key", ed25519.Ed25519PrivateKey.generate())
    kid = changes.pop("kid", minter.kid)
    algorithm = changes.pop("alg", "EdDSA")
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": ISSUER,
        "aud": audience,
        "iat": now,
        "exp": now + 60,
        "a2a_task": "planner-task-1",
        "a2a_skill": "echo",
    }
    for name, value in changes.items():
        if value is None:
            claims.pop(name)
        else:
            claims[name] = value
    return jwt.encode(claims, key, algorithm=algorithm, headers={"kid": kid})


@ASYNC
async def test_every_bad_token_is_refused_naming_what_failed_and_the_server_keeps_serving() -> None:
    minter = DelegationMinter.generate(issuer=ISSUER)
    other_issuer = DelegationMinter.generate(issuer="someone-else")
    async with sub_agent(minter) as (served, audience):
        signer: Any = minter._key  # the minter's own key, to forge single-claim changes
        cases: dict[str, tuple[str, str]] = {
            "another audience": (minter.mint(audience="127.0.0.1:1", task_id="t", skill="echo"), "claim aud"),
            "expired": (minter.mint(audience=audience, task_id="t", skill="echo", lifetime=-60), "claim exp"),
            "bad signature": (_forged(minter, audience), "signature"),
            "unknown key id": (_forged(minter, audience, kid="nobody"), "header kid"),
            "another issuer": (
                other_issuer.mint(audience=audience, task_id="t", skill="echo"),
                "does not know",
            ),
            "issuer claim changed": (_forged(minter, audience, key=signer, iss="mallory"), "claim iss"),
            "no task claim": (_forged(minter, audience, key=signer, a2a_task=None), "'a2a_task' claim"),
            "no skill claim": (_forged(minter, audience, key=signer, a2a_skill=None), "'a2a_skill' claim"),
            "empty task claim": (_forged(minter, audience, key=signer, a2a_task=""), "non-empty strings"),
            "HMAC": (
                _forged(minter, audience, key="a-shared-secret-of-32-bytes-long!", alg="HS256"),
                "HS256",
            ),
            "garbage": ("not.a.jwt!", "not a JWT"),
        }
        for case, (token, named) in cases.items():
            error = await refusal(
                served.client.send_message(A2AClient.text_request("echo x"), metadata=headers(token))
            )
            assert isinstance(error, errors.UnauthenticatedError), (case, error)
            assert named in error.message, (case, error.message)
            assert token not in error.message
        good = minter.mint(audience=audience, task_id="t", skill="echo")
        reply = await served.client.send_message(
            A2AClient.text_request("echo still here"), metadata=headers(good)
        )
        assert reply.task.status.state == types.TASK_STATE_COMPLETED


# --- verifying, on the session binding ----------------------------------------------------------------


@ASYNC
async def test_tokens_hold_on_the_session_binding_at_the_handshake_and_per_call() -> None:
    minter = DelegationMinter.generate(issuer=ISSUER)
    async with sub_agent(minter) as (served, audience):
        hello = minter.mint(audience=audience, task_id="planner-task-1", skill="echo")
        stranger = minter.mint(audience="127.0.0.1:1", task_id="planner-task-1", skill="echo")
        with pytest.raises(errors.UnauthenticatedError, match="claim aud"):
            async with served.client.session(metadata={DELEGATION_HEADER: stranger}):
                raise AssertionError("the handshake must refuse a token for another audience")
        async with served.client.session(metadata={DELEGATION_HEADER: hello}) as session:
            per_call = minter.mint(audience=audience, task_id="planner-task-1", skill="echo")
            reply = await session.send_message(
                A2AClient.text_request("echo by session"), metadata=headers(per_call)
            )
            assert reply.task.artifacts[0].parts[0].text == "echo by session"
            with pytest.raises(errors.PermissionDeniedError, match="a2a_skill"):
                await session.send_message(
                    A2AClient.text_request("stream 2"), metadata=headers(per_call, "stream")
                )
            other_task = minter.mint(audience=audience, task_id="planner-task-2", skill="echo")
            with pytest.raises(errors.PermissionDeniedError, match="a2a_task"):
                await session.get_task(reply.task.id, metadata=headers(other_task, None))
            expired = minter.mint(audience=audience, task_id="planner-task-1", skill="echo", lifetime=-60)
            with pytest.raises(errors.UnauthenticatedError, match="claim exp"):
                await session.send_message(A2AClient.text_request("echo late"), metadata=headers(expired))
            assert session.alive  # refused calls end, the session goes on
            assert (
                await session.get_task(reply.task.id, metadata=headers(per_call, None))
            ).id == reply.task.id


# --- publishing the keys, and the reference agent's delegation --------------------------------------


@ASYNC
async def test_the_minting_server_publishes_its_jwks_and_a_sub_agent_verifies_with_it() -> None:
    minter = DelegationMinter.generate(issuer=ISSUER, algorithm="ES256")
    async with AgentStack(
        ReferenceAgent(), grpc_port=0, http_port=0, bridge=BridgeSettings(jwks=minter.jwks())
    ) as planner:
        url = f"{planner.http_url}/.well-known/jwks.json"
        async with httpx.AsyncClient(timeout=WAIT) as http:
            response = await http.get(url)
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/jwk-set+json"
        assert response.json() == minter.jwks()
        scheme = DelegationTokenScheme(issuer=ISSUER, audience=["not-yet-known"], jwks_url=url)
        served = await serve(ReferenceAgent(), authentication=Authentication([scheme]))
        try:
            audience = f"127.0.0.1:{served.server.port}"
            scheme.audience.append(audience)
            token = minter.mint(audience=audience, task_id="planner-task-1", skill="echo")
            reply = await served.client.send_message(
                A2AClient.text_request("echo keys by URL"), metadata=headers(token)
            )
            assert reply.task.status.state == types.TASK_STATE_COMPLETED
        finally:
            await shutdown(served)


@ASYNC
@pytest.mark.parametrize("binding", ["session", "unary"])
async def test_the_reference_agents_delegation_carries_a_token_for_its_task(
    binding: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from a2a_grpc import reference_agent

    if binding == "unary":  # as if the peer's card offered no session: the unary binding carries it
        monkeypatch.setattr(reference_agent, "session_interface", lambda card: None)
    minter = DelegationMinter.generate(issuer=ISSUER)
    async with sub_agent(minter) as (peer, audience):
        agent = ReferenceAgent(DelegationPolicy(allow=[audience], tokens=minter))
        planner = await serve(agent)
        try:
            reply = await planner.client.send_message(
                A2AClient.text_request(f"delegate {audience} echo with a token")
            )
            task = reply.task
            assert task.status.state == types.TASK_STATE_COMPLETED, task.status
            assert task.artifacts[0].parts[0].text == "echo with a token"
            streamed = await planner.client.send_message(
                A2AClient.text_request(f"delegate {audience} stream 2")
            )
            assert streamed.task.status.state == types.TASK_STATE_COMPLETED  # minted for skill stream
            # The sub-agent's tasks belong to the planner's task: a token for another task sees none.
            other = minter.mint(audience=audience, task_id="another-task", skill="echo")
            assert (await peer.client.list_tasks(metadata=headers(other, None))).tasks == []
            mine = minter.mint(audience=audience, task_id=task.id, skill="echo")
            assert len((await peer.client.list_tasks(metadata=headers(mine, None))).tasks) == 1
        finally:
            await shutdown(planner)


@ASYNC
async def test_metadata_grpc_cannot_carry_is_a_typed_error_before_any_call() -> None:
    minter = DelegationMinter.generate(issuer=ISSUER)
    async with sub_agent(minter) as (served, _):
        for metadata in (
            [(DELEGATION_HEADER, "\x7fnot printable")],
            [("Upper-Case", "x")],
            [("x-data", b"raw bytes")],
        ):
            with pytest.raises(errors.InvalidParamsError, match="metadata"):
                await served.client.send_message(A2AClient.text_request("echo x"), metadata=metadata)
        with pytest.raises(errors.InvalidParamsError, match="metadata"):
            A2AClient(served.server.address, metadata=[("bad key!", "x")])
        with pytest.raises(errors.UnauthenticatedError):  # bytes under a -bin key travel: auth answers
            await served.client.list_tasks(metadata=[("x-data-bin", b"\x00\x01")])
