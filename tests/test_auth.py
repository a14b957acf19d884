"""Authentication on every binding: each scheme takes its good credential and refuses every bad one
the same way on gRPC, JSON-RPC and HTTP+JSON (UNAUTHENTICATED / 401 with ``WWW-Authenticate``),
the card declares the schemes, the extended card is for authenticated callers only, and a server
beyond loopback refuses to run without authentication unless told to.

The agent is served as ``a2a-grpc serve --http-port 0`` serves it (gRPC, and the in-process
bridge), with API keys and bearer JWTs (ES256 and EdDSA keys from a JWKS) configured.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import grpc
import httpx
import jwt
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from a2a_grpc import errors, types
from a2a_grpc.bridge import transcoding
from a2a_grpc.client import A2AClient
from a2a_grpc.reference_agent import ReferenceAgent
from a2a_grpc.security import (
    ApiKey,
    ApiKeyScheme,
    Authentication,
    BearerJwtScheme,
    ClientCertificate,
    Credentials,
    MutualTlsScheme,
    Principal,
    Unprotected,
)
from a2a_grpc.security.authentication import check_exposure
from a2a_grpc.security.bearer import MAX_JWKS_BYTES
from a2a_grpc.server import A2AServer, ServerSettings
from a2a_grpc.service import CallContext
from a2a_grpc.tasks import InMemoryTaskStore
from tests.bridge_peers import BINDINGS, Stack, open_binding, serve_stack

ASYNC = pytest.mark.asyncio(loop_scope="module")

ISSUER = "https://issuer.mesh.test"
AUDIENCE = "a2a://planner"
KEYS = {
    "alice": "alice-key-0123456789abcdef",
    "bob": "bob-key-0123456789abcdef01",
    "carol": "carol-key-0123456789abcdef",
}
ES_KEY = ec.generate_private_key(ec.SECP256R1())
ED_KEY = ed25519.Ed25519PrivateKey.generate()
STRANGER_KEY = ec.generate_private_key(ec.SECP256R1())  # signs, but is in no key set


def jwk(private: Any, kid: str, alg: str) -> dict[str, Any]:
    algorithm = jwt.algorithms.ECAlgorithm if alg == "ES256" else jwt.algorithms.OKPAlgorithm
    key: dict[str, Any] = json.loads(algorithm.to_jwk(private.public_key()))
    return {**key, "kid": kid, "alg": alg, "use": "sig"}


JWKS = {"keys": [jwk(ES_KEY, "es-1", "ES256"), jwk(ED_KEY, "ed-1", "EdDSA")]}


def token(
    *,
    key: Any = ES_KEY,
    kid: str | None = "es-1",
    alg: str = "ES256",
    drop: tuple[str, ...] = (),
    **claims: Any,
) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "dave", "iat": now, "exp": now + 300, **claims}
    for name in drop:
        body.pop(name)
    headers = {"kid": kid} if kid is not None else {}
    return jwt.encode(body, key, algorithm=alg, headers=headers)


def authentication(**jwt_options: Any) -> Authentication:
    keys = [ApiKey(name, key=value, tenant="acme" if name == "carol" else "") for name, value in KEYS.items()]
    return Authentication(
        [
            ApiKeyScheme(keys),
            BearerJwtScheme(
                issuer=ISSUER, audience=AUDIENCE, jwks=JWKS, tenant_claim="tenant", **jwt_options
            ),
        ]
    )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack() -> AsyncIterator[Stack]:
    async with serve_stack(ReferenceAgent(), authentication=authentication()) as served:
        yield served


def api_key(name: str) -> dict[str, str]:
    return {"X-API-Key": KEYS[name]}


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


# --- one call, answered or refused, on each binding ---------------------------------------------------


async def list_tasks(binding: str, stack: Stack, headers: Mapping[str, str]) -> Any:
    """ListTasks with ``headers``: the response, or the refusal as ``(status, challenge, body)``."""
    if binding == "grpc":
        metadata = tuple((k.lower(), v) for k, v in headers.items())
        async with A2AClient(stack.address, metadata=metadata, timeout=10) as client:
            try:
                return await client.list_tasks()
            except errors.A2AError as exc:
                return exc
    async with httpx.AsyncClient(base_url=stack.url, timeout=10, headers={"A2A-Version": "1.0"}) as http:
        if binding == "jsonrpc":
            body = {"jsonrpc": "2.0", "id": 1, "method": "ListTasks", "params": {}}
            return await http.post("/", json=body, headers=dict(headers))
        return await http.get("/tasks", headers=dict(headers))


def assert_refused(binding: str, outcome: Any, *, reason: str, schemes: tuple[str, ...] = ()) -> None:
    """The wire facts of an authentication refusal on ``binding``; ``reason`` is in the message."""
    if binding == "grpc":
        assert isinstance(outcome, errors.UnauthenticatedError), outcome
        assert outcome.grpc_code == grpc.StatusCode.UNAUTHENTICATED
        message, challenge = outcome.message, outcome.challenge
    else:
        assert isinstance(outcome, httpx.Response)
        assert outcome.status_code == 401, (outcome.status_code, outcome.text)
        challenge = outcome.headers["www-authenticate"]
        body = outcome.json()
        if binding == "jsonrpc":
            assert body["error"]["code"] == -32091, body
            message = body["error"]["message"]
            info = next(d for d in body["error"]["data"] if d["@type"].endswith("ErrorInfo"))
        else:
            assert (body["error"]["code"], body["error"]["status"]) == (401, "UNAUTHENTICATED"), body
            message = body["error"]["message"]
            info = next(d for d in body["error"]["details"] if d["@type"].endswith("ErrorInfo"))
        assert info["reason"] == "UNAUTHENTICATED"
        assert info["metadata"]["www_authenticate"] == challenge
    assert reason in message, message
    for scheme in schemes:
        assert scheme in challenge, challenge
    for secret in KEYS.values():
        assert secret not in message
        assert secret not in challenge


def assert_answered(binding: str, outcome: Any) -> None:
    if binding == "grpc":
        assert isinstance(outcome, types.ListTasksResponse), outcome
        return
    assert isinstance(outcome, httpx.Response)
    assert outcome.status_code == 200, outcome.text
    body = outcome.json()
    assert "error" not in body, body


GOOD = {
    "api-key": api_key("alice"),
    "jwt-es256": bearer(token()),
    "jwt-eddsa": bearer(token(key=ED_KEY, kid="ed-1", alg="EdDSA")),
    "jwt-single-key-set-without-kid": None,  # a scheme of its own, below
}
BAD: dict[str, tuple[dict[str, str], str]] = {
    "missing": ({}, "requires credentials"),
    "wrong-api-key": ({"X-API-Key": "not-a-key-of-anyone-here"}, "is not valid"),
    "empty-api-key": ({"X-API-Key": ""}, "is not valid"),
    "expired": (bearer(token(exp=int(time.time()) - 3600)), "expired"),
    "not-yet-valid": (bearer(token(nbf=int(time.time()) + 3600)), "not valid yet"),
    "wrong-audience": (bearer(token(aud="a2a://someone-else")), "audience"),
    "wrong-issuer": (bearer(token(iss="https://evil.test")), "issuer"),
    "badly-signed": (bearer(token(key=STRANGER_KEY)), "signature"),
    "unknown-key": (bearer(token(key=STRANGER_KEY, kid="es-9")), "does not know"),
    "alg-none": (
        bearer(jwt.encode({"sub": "x", "iss": ISSUER, "aud": AUDIENCE}, None, algorithm="none")),
        "not accepted",
    ),
    "hmac-with-the-public-key": (
        bearer(
            jwt.encode(
                {"sub": "x"}, "a-shared-secret-of-32-bytes-long!", algorithm="HS256", headers={"kid": "es-1"}
            )
        ),
        "not accepted",
    ),
    "not-a-jwt": (bearer("abc.def"), "not a JWT"),
    "no-expiry": (bearer(token(drop=("exp",))), "'exp'"),
    "no-subject": (bearer(token(drop=("sub",))), "'sub'"),
    "subject-forging-a-log-line": (bearer(token(sub="eve\nINFO forged")), "cannot name a caller"),
    "subject-not-a-string": (bearer(token(sub=7)), "not valid"),
    "tenant-with-a-control-character": (bearer(token(tenant="acme\x00")), "cannot name a caller"),
}


@ASYNC
@pytest.mark.parametrize("binding", BINDINGS)
@pytest.mark.parametrize("case", [name for name, headers in GOOD.items() if headers is not None])
async def test_a_good_credential_is_accepted(stack: Stack, binding: str, case: str) -> None:
    headers = GOOD[case]
    assert headers is not None
    assert_answered(binding, await list_tasks(binding, stack, headers))


@ASYNC
@pytest.mark.parametrize("binding", BINDINGS)
@pytest.mark.parametrize("case", list(BAD))
async def test_a_bad_or_missing_credential_is_refused_alike_on_every_binding(
    stack: Stack, binding: str, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    headers, reason = BAD[case]
    with caplog.at_level(logging.INFO, logger="a2a_grpc.security"):
        outcome = await list_tasks(binding, stack, headers)
    # No credential: the challenge names every scheme; a refused one names the scheme that refused it.
    schemes = ("ApiKey", "Bearer") if case == "missing" else ()
    assert_refused(binding, outcome, reason=reason, schemes=schemes)
    logged = caplog.text
    assert "refused" in logged  # spec 13.4: authentication failures are logged ...
    for value in headers.values():  # ... without the credential
        if len(value) > 8:
            assert value.split(" ")[-1] not in logged


@ASYNC
@pytest.mark.parametrize("binding", BINDINGS)
async def test_a_stream_without_credentials_is_refused_before_it_starts(stack: Stack, binding: str) -> None:
    async def read(client: Any) -> None:
        async with contextlib.aclosing(
            client.send_streaming_message(A2AClient.text_request("echo hi"))
        ) as events:
            async for _ in events:
                raise AssertionError("no event may reach an unauthenticated caller")

    async with open_binding(binding, stack) as client:
        with pytest.raises(errors.UnauthenticatedError) as refused:
            await read(client)
    assert "ApiKey" in refused.value.challenge
    if binding != "grpc":
        assert client.last_error is not None
        assert client.last_error.http_status == 401
        assert not client.last_error.in_stream


@ASYNC
async def test_a_key_set_of_one_key_verifies_tokens_without_kid() -> None:
    scheme = BearerJwtScheme(issuer=ISSUER, audience=AUDIENCE, jwks={"keys": [jwk(ES_KEY, "es-1", "ES256")]})
    call = CallContext(headers={"authorization": f"Bearer {token(kid=None)}"})
    principal = await scheme.authenticate(call)
    assert (principal.id, principal.scheme) == ("dave", "bearer")
    two = BearerJwtScheme(issuer=ISSUER, audience=AUDIENCE, jwks=JWKS)
    with pytest.raises(errors.UnauthenticatedError, match="does not know"):
        await two.authenticate(call)  # two keys and no kid: which one? neither


@ASYNC
async def test_the_card_declares_the_schemes_and_any_one_suffices(stack: Stack) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        published = (await http.get(f"{stack.url}/.well-known/agent-card.json")).json()
    async with A2AClient(stack.address, timeout=10) as client:
        over_grpc = await client.get_agent_card()  # the public card needs no credentials
    for card in (transcoding.decode(published, types.AgentCard), over_grpc):
        assert card.security_schemes["apiKey"].api_key_security_scheme.location == "header"
        assert card.security_schemes["apiKey"].api_key_security_scheme.name == "X-API-Key"
        assert card.security_schemes["bearer"].http_auth_security_scheme.scheme == "Bearer"
        assert card.security_schemes["bearer"].http_auth_security_scheme.bearer_format == "JWT"
        assert [list(r.schemes) for r in card.security_requirements] == [["apiKey"], ["bearer"]]
    assert published["securitySchemes"]["apiKey"] == {
        "apiKeySecurityScheme": {
            "location": "header",
            "name": "X-API-Key",
            "description": "an API key issued by the agent's operator",
        },
        # The same scheme as v0.3 clients read it: the merged card (docs/versions.md).
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "an API key issued by the agent's operator",
    }


@ASYNC
@pytest.mark.parametrize("binding", BINDINGS)
async def test_the_extended_card_is_for_authenticated_callers_only(stack: Stack, binding: str) -> None:
    async with open_binding(binding, stack) as anonymous:
        with pytest.raises(errors.UnauthenticatedError):
            await anonymous.get_extended_agent_card()
    async with open_binding(binding, stack, headers=api_key("bob")) as known:
        card = await known.get_extended_agent_card()
    assert card.name


@ASYNC
async def test_without_authentication_the_extended_card_is_refused() -> None:
    async with serve_stack(ReferenceAgent()) as open_stack, open_binding("grpc", open_stack) as client:
        with pytest.raises(errors.UnauthenticatedError, match="only for authenticated callers"):
            await client.get_extended_agent_card()


@ASYNC
async def test_our_client_presents_what_the_card_asks_for(stack: Stack) -> None:
    async with A2AClient(stack.address, timeout=10) as anonymous:
        card = await anonymous.get_agent_card()
    for credentials in (Credentials(api_key=KEYS["alice"]), Credentials(bearer_token=token())):
        async with A2AClient.from_card(card, credentials=credentials, timeout=10) as client:
            await client.list_tasks()
    mtls_only = types.AgentCard(name="peer")
    mtls_only.security_schemes["mtls"].mtls_security_scheme.SetInParent()
    mtls_only.security_requirements.add().schemes["mtls"].SetInParent()
    with pytest.raises(ValueError, match=r"asks for a client certificate \(mtls\)"):
        Credentials(api_key="k" * 20).headers(mtls_only)
    assert Credentials(api_key="k" * 20, client_certificate=True).headers(mtls_only) == ()
    assert "k" * 20 not in repr(Credentials(api_key="k" * 20, bearer_token="t" * 20))


# --- the JWKS URL ------------------------------------------------------------------------------------


class KeyServer:
    """A JWKS over HTTP on 127.0.0.1, counting fetches; its key set can be changed (a rotation)."""

    def __init__(self, jwks: dict[str, Any]) -> None:
        self.jwks = jwks
        self.fetches = 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.fetches += 1
        return httpx.Response(200, json=self.jwks)


@ASYNC
async def test_a_jwks_url_is_cached_refetched_on_rotation_and_never_hammered() -> None:
    server = KeyServer({"keys": [jwk(ES_KEY, "es-1", "ES256")]})
    http = httpx.AsyncClient(transport=httpx.MockTransport(server.handle))
    scheme = BearerJwtScheme(
        issuer=ISSUER,
        audience=AUDIENCE,
        jwks_url="http://127.0.0.1:1/jwks.json",
        http=http,
        refresh_seconds=3600,
    )
    try:
        await scheme.start()
        assert server.fetches == 1
        for _ in range(5):  # cached
            await scheme.authenticate(CallContext(headers={"authorization": f"Bearer {token()}"}))
        assert server.fetches == 1
        # A token naming a key the set lacks: one refetch (a rotation?), then none for refresh_seconds,
        # however many made-up kids arrive.
        for n in range(20):
            forged = token(key=STRANGER_KEY, kid=f"made-up-{n}")
            with pytest.raises(errors.UnauthenticatedError, match="does not know"):
                await scheme.authenticate(CallContext(headers={"authorization": f"Bearer {forged}"}))
        assert server.fetches == 1  # start() fetched within refresh_seconds: no refetch at all
        scheme.refresh_seconds = 0.0  # the rotation window has passed
        server.jwks = {"keys": [*server.jwks["keys"], jwk(ED_KEY, "ed-2", "EdDSA")]}
        rotated = token(key=ED_KEY, kid="ed-2", alg="EdDSA")
        principal = await scheme.authenticate(CallContext(headers={"authorization": f"Bearer {rotated}"}))
        assert principal.id == "dave"
        assert server.fetches == 2
    finally:
        await http.aclose()


@ASYNC
async def test_an_unreadable_jwks_url_fails_start() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503)

    async with httpx.AsyncClient(transport=httpx.MockTransport(down)) as http:
        scheme = BearerJwtScheme(
            issuer=ISSUER, audience=AUDIENCE, jwks_url="https://keys.mesh.test/jwks", http=http
        )
        with pytest.raises(ValueError, match="cannot fetch the JWKS"):
            await scheme.start()


@ASYNC
async def test_a_hostile_key_server_costs_a_bounded_read_and_wait() -> None:
    import gzip

    # A usable key set padded past MAX_JWKS_BYTES, gzipped (a few KiB on the wire): refused.
    padded = {"keys": [jwk(ES_KEY, "es-1", "ES256")], "pad": "0" * MAX_JWKS_BYTES}
    bomb = gzip.compress(json.dumps(padded).encode())
    seen: list[str] = []

    def bombs(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("accept-encoding", ""))
        return httpx.Response(200, content=bomb, headers={"content-encoding": "gzip"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(bombs)) as http:
        scheme = BearerJwtScheme(
            issuer=ISSUER, audience=AUDIENCE, jwks_url="https://keys.mesh.test/j", http=http
        )
        with pytest.raises(ValueError, match="cannot fetch the JWKS"):
            await scheme.start()
    assert seen == ["gzip, deflate"]

    # A key server that never finishes its answer: the whole fetch ends at fetch_timeout.
    async def drip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n")
        with contextlib.suppress(ConnectionError):
            for _ in range(100):
                writer.write(b" ")
                await writer.drain()
                await asyncio.sleep(0.05)
        writer.close()

    server = await asyncio.start_server(drip, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        scheme = BearerJwtScheme(
            issuer=ISSUER, audience=AUDIENCE, jwks_url=f"http://127.0.0.1:{port}/j", fetch_timeout=0.3
        )
        started = time.monotonic()
        with pytest.raises(ValueError, match="cannot fetch the JWKS"):
            await scheme.start()
        elapsed = time.monotonic() - started
        await scheme.aclose()
        assert elapsed < 3  # the drip would take 5 s; the bound is 0.3 s
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"jwks": JWKS, "algorithms": ("HS256",)}, "public-key algorithms"),
        ({"jwks": JWKS, "algorithms": ("none",)}, "public-key algorithms"),
        ({"jwks_url": "http://keys.mesh.test/jwks"}, "must be https"),
        ({}, "exactly one of"),
        ({"jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}}, "no public key"),
        ({"jwks": {"keys": "nope"}}, "not a usable JWKS"),
    ],
)
def test_a_misconfigured_jwt_scheme_is_refused_at_once(options: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        BearerJwtScheme(issuer=ISSUER, audience=AUDIENCE, **options)


@pytest.mark.parametrize(
    ("keys", "problem"),
    [
        ([ApiKey("a", key="0123456789abcdef"), ApiKey("b", key="0123456789abcdef")], "are the same"),
        ([], "at least one key"),
    ],
)
def test_a_misconfigured_api_key_scheme_is_refused_at_once(keys: list[ApiKey], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        ApiKeyScheme(keys)


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda: ApiKey("a", key="short"), "too short"),
        (lambda: ApiKey("a\nb", key="0123456789abcdef"), "control characters"),
        (lambda: ApiKey("a" * 300, key="0123456789abcdef"), "1..256"),
        (lambda: ApiKey("a", key="0123456789abcdef", sha256="00" * 32), "exactly one"),
        (lambda: ApiKey("a", sha256="XYZ"), "64 lower-case hex"),
        (lambda: ApiKeyScheme([ApiKey("a", key="0123456789abcdef")], header="x-key-bin"), "gRPC metadata"),
        (lambda: ApiKeyScheme([ApiKey("a", key="0123456789abcdef")], header="X Key"), "gRPC metadata"),
    ],
)
def test_bad_key_configuration_says_what_is_wrong(make: Any, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        make()


def test_a_key_file_holds_keys_or_their_digests(tmp_path: Any) -> None:
    import hashlib

    digest = hashlib.sha256(b"bob-key-0123456789abcdef01").hexdigest()
    path = tmp_path / "keys.txt"
    path.write_text(f"# principal key [tenant]\nalice alice-key-0123456789abcdef\nbob sha256:{digest} acme\n")
    scheme = ApiKeyScheme.from_file(path)

    async def who(key: str) -> Principal:
        return await scheme.authenticate(CallContext(headers={"x-api-key": key}))

    assert asyncio.run(who("alice-key-0123456789abcdef")) == Principal("alice", "apiKey")
    assert asyncio.run(who("bob-key-0123456789abcdef01")) == Principal("bob", "apiKey", "acme")
    path.write_text("alice\n")
    with pytest.raises(ValueError, match=r"keys.txt:1: expected 'PRINCIPAL KEY \[TENANT\]'"):
        ApiKeyScheme.from_file(path)


# --- mutual TLS (the certificate as a front verified it) -----------------------------------------------


def certificate(common_name: str, *sans: str) -> ClientCertificate:
    return ClientCertificate(f"CN={common_name}", common_name, sans, "ab" * 32)


@ASYNC
async def test_mutual_tls_names_the_principal_from_the_certificate() -> None:
    by_name = MutualTlsScheme()
    call = CallContext(client_certificate=certificate("planner", "URI:spiffe://mesh/planner"))
    assert await by_name.authenticate(call) == Principal("planner", "mtls")
    by_uri = MutualTlsScheme(identity="uri", principals={"spiffe://mesh/planner": ("planner", "acme")})
    assert await by_uri.authenticate(call) == Principal("planner", "mtls", "acme")
    stranger = CallContext(client_certificate=certificate("x", "URI:spiffe://mesh/stranger"))
    with pytest.raises(errors.UnauthenticatedError, match="not one this agent accepts"):
        await by_uri.authenticate(stranger)
    with pytest.raises(errors.UnauthenticatedError, match="no client certificate"):
        await by_name.authenticate(CallContext())
    with pytest.raises(errors.UnauthenticatedError, match="cannot name a caller"):
        await by_name.authenticate(CallContext(client_certificate=certificate("a\nb")))
    assert not by_name.carries(CallContext())
    assert by_name.carries(call)


# --- verified tokens are remembered, not trusted past their expiry -------------------------------------


@ASYNC
async def test_a_verified_token_is_checked_once_but_not_past_its_expiry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    auth = authentication()
    checks = 0
    scheme = auth.schemes[1]
    verify = scheme.authenticate

    async def counted(call: CallContext) -> Principal:
        nonlocal checks
        checks += 1
        return await verify(call)

    monkeypatch.setattr(scheme, "authenticate", counted)
    expires = int(time.time()) + 120
    call = CallContext(headers={"authorization": f"Bearer {token(exp=expires)}"})
    for _ in range(10):
        assert (await auth.authenticate(call)).principal == Principal("dave", "bearer")
    assert checks == 1
    # Past its exp, the remembered answer is dropped: the token is verified again (and PyJWT, on its
    # own clock, refuses an expired one: the "expired" case above).
    monkeypatch.setattr(time, "time", lambda: float(expires + 1))
    await auth.authenticate(call)
    assert checks == 2


# --- no authentication: loopback only, unless told ------------------------------------------------------


def test_without_authentication_only_loopback_is_served(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="a2a_grpc.security"):
        for host in ("127.0.0.1", "::1", "localhost", "127.0.0.2"):
            check_exposure(host, None, False, "gRPC")
    assert "no authentication (loopback only)" in caplog.text
    for host in ("0.0.0.0", "::", "10.1.2.3", "agent.mesh.internal", ""):
        with pytest.raises(Unprotected, match="without authentication"):
            check_exposure(host, None, False, "gRPC")
        check_exposure(host, None, True, "gRPC")  # allowed explicitly (and logged)
        check_exposure(host, authentication(), False, "gRPC")


@ASYNC
async def test_a_server_beyond_loopback_without_authentication_does_not_start() -> None:
    server = A2AServer(ReferenceAgent(), InMemoryTaskStore(), ServerSettings(host="0.0.0.0", port=0))
    with pytest.raises(Unprotected, match="--allow-unauthenticated"):
        await server.start()
    assert server.handler is None  # refused before anything was bound or started


# --- through the bridges: the caller's credential crosses, as the upstream's card asks -----------------


@ASYNC
@pytest.mark.parametrize("binding", ["jsonrpc", "rest"])
async def test_the_reverse_bridge_passes_the_callers_key_to_a_json_agent(stack: Stack, binding: str) -> None:
    """gRPC callers of our front in front of a JSON agent that wants an API key (its card says in
    which header): the key crosses; a caller without one gets the agent's 401 as UNAUTHENTICATED."""
    from a2a_grpc.bridge.grpcfront import GrpcFront
    from a2a_grpc.bridge.outbound import open_json_upstream

    upstream = await open_json_upstream(
        stack.url, prefer=["JSONRPC" if binding == "jsonrpc" else "HTTP+JSON"]
    )
    try:
        async with GrpcFront(upstream, ServerSettings(host="127.0.0.1", port=0)) as front:
            assert "x-api-key" in front.forward_headers
            outcome = await list_tasks("grpc", Stack(front.address, stack.url, stack.server), api_key("bob"))
            assert_answered("grpc", outcome)
            refused = await list_tasks("grpc", Stack(front.address, stack.url, stack.server), {})
            assert_refused("grpc", refused, reason="requires credentials", schemes=("ApiKey", "Bearer"))
    finally:
        await upstream.aclose()


@ASYNC
async def test_the_http_bridge_passes_the_callers_key_to_a_grpc_agent(stack: Stack) -> None:
    """``a2a-grpc bridge http-to-grpc`` in front of an agent that wants an API key: the bridge reads
    the header name from the card and lets it cross; without it, the agent's 401 comes back."""
    from tests.bridge_peers import bridge_process

    async with bridge_process(stack.address) as url:
        bridged = Stack(stack.address, url, stack.server)
        for binding in ("jsonrpc", "rest"):
            assert_answered(binding, await list_tasks(binding, bridged, api_key("alice")))
            refused = await list_tasks(binding, bridged, {})
            assert_refused(binding, refused, reason="requires credentials", schemes=("ApiKey",))
