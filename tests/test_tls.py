"""TLS and mutual TLS on every listener and client: the gRPC server, the bridge's HTTP listener
(httptools and h11), our client, the official SDK's gRPC, JSON-RPC and REST clients, and the
command line. Certificates come from a test CA (trustme); every server binds 127.0.0.1 port 0.

Mutual TLS is shown by an interceptor in ``ServerSettings.interceptors`` that records each call's
``CallContext.client_certificate``, whichever front took the call.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import hashlib
import re
import ssl
import subprocess
import types as pytypes
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import trustme
from a2a.client import A2ACardResolver, ClientCallContext, ClientConfig, ClientFactory
from a2a.types import a2a_pb2 as sdk
from a2a.utils.constants import TransportProtocol
from cryptography.hazmat.primitives import serialization
from google.protobuf.message import Message

from a2a_grpc import errors, interop
from a2a_grpc.bridge import httpserver
from a2a_grpc.bridge.stack import AgentStack
from a2a_grpc.client import A2AClient
from a2a_grpc.reference_agent import ReferenceAgent
from a2a_grpc.security.identity import ClientCertificate
from a2a_grpc.security.tls import ClientTls, TlsSettings
from a2a_grpc.server import A2AServer, ServerSettings
from a2a_grpc.service import CallContext, Interceptor, Method
from a2a_grpc.tasks import InMemoryTaskStore
from tests.conftest import stop_process
from tests.test_cli_first_hour import CLI, run_async

ASYNC = pytest.mark.asyncio
WAIT = 10.0
A2A = {"A2A-Version": "1.0"}


# --- certificates --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Certs:
    ca: str
    cert: str
    """The server's: 127.0.0.1 and localhost."""
    key: str
    client_cert: str
    """CN agent-7, DNS:agent-7.example, issued by ``ca``."""
    client_key: str
    client_der: bytes
    stranger_cert: str
    """A client certificate from another CA."""
    stranger_key: str
    encrypted_key: str
    not_pem: str

    def server(self, mutual: bool = False) -> TlsSettings:
        return TlsSettings(self.cert, self.key, self.ca if mutual else None, require_client_cert=mutual)

    def client(self, mutual: bool = False) -> ClientTls:
        if mutual:
            return ClientTls(self.ca, self.client_cert, self.client_key)
        return ClientTls(self.ca)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    folder = tmp_path_factory.mktemp("certs")
    ca, other = trustme.CA(), trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("agent-7.example", common_name="agent-7")
    stranger = other.issue_cert("stranger.example", common_name="stranger")

    def write(name: str, blob: trustme.Blob) -> str:
        blob.write_to_path(str(folder / name))
        return str(folder / name)

    key = serialization.load_pem_private_key(server.private_key_pem.bytes(), None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    (folder / "encrypted.key").write_bytes(encrypted)
    (folder / "notes.txt").write_text("not a certificate\n")
    return Certs(
        ca=write("ca.pem", ca.cert_pem),
        cert=write("server.pem", server.cert_chain_pems[0]),
        key=write("server.key", server.private_key_pem),
        client_cert=write("client.pem", client.cert_chain_pems[0]),
        client_key=write("client.key", client.private_key_pem),
        client_der=ssl.PEM_cert_to_DER_cert(client.cert_chain_pems[0].bytes().decode()),
        stranger_cert=write("stranger.pem", stranger.cert_chain_pems[0]),
        stranger_key=write("stranger.key", stranger.private_key_pem),
        encrypted_key=str(folder / "encrypted.key"),
        not_pem=str(folder / "notes.txt"),
    )


# --- settings -------------------------------------------------------------------------------------------


def test_settings_name_the_file_and_what_is_wrong_with_it(certs: Certs, tmp_path: Path) -> None:
    c = certs
    missing = str(tmp_path / "none.pem")
    cases: list[tuple[Callable[[], object], str]] = [
        (lambda: TlsSettings(missing, c.key), "TLS certificate file '.*none.pem' does not exist"),
        (lambda: TlsSettings(str(tmp_path), c.key), "is a directory"),
        (lambda: TlsSettings(c.not_pem, c.key), "notes.txt' holds no PEM certificate"),
        (lambda: TlsSettings(c.cert, c.not_pem), "TLS key file .*notes.txt' holds no PEM private key"),
        (lambda: TlsSettings(c.cert, c.client_key), "client.key' does not match the certificate in"),
        (lambda: TlsSettings(c.cert, c.encrypted_key), "encrypted.key' is encrypted"),
        (lambda: TlsSettings(c.cert, c.key, require_client_cert=True), "require_client_cert needs client_ca"),
        (
            lambda: TlsSettings(c.cert, c.key, c.not_pem, True),
            "TLS client CA file .*holds no PEM certificate",
        ),
        (lambda: ClientTls(missing), "TLS CA file .*none.pem' does not exist"),
        (lambda: ClientTls(c.ca, c.client_cert), "both cert_file and key_file"),
        (lambda: ClientTls(c.ca, c.client_cert, c.key), "TLS client key file .*does not match"),
    ]
    for make, message in cases:
        with pytest.raises(ValueError, match=message):
            make()
    assert "BEGIN" not in repr(certs.server()) + repr(certs.client(mutual=True))  # keys stay out of logs


def test_a_grpc_listener_refuses_optional_client_certificates(certs: Certs) -> None:
    optional = TlsSettings(certs.cert, certs.key, certs.ca, require_client_cert=False)
    with pytest.raises(ValueError, match="gRPC listener cannot make client certificates optional"):
        ServerSettings(tls=optional)
    assert optional.ssl_context().verify_mode == ssl.CERT_OPTIONAL  # HTTP can
    context = certs.server().ssl_context()
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.verify_mode == ssl.CERT_NONE


# --- what records the client certificate ------------------------------------------------------------------


class Recorder(Interceptor):
    """Records (front, client certificate) of every call."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, ClientCertificate | None]] = []

    async def unary(
        self,
        method: Method,
        request: Message,
        context: CallContext,
        call_next: Callable[[Message, CallContext], Awaitable[Message]],
    ) -> Message:
        self.seen.append((context.front, context.client_certificate))
        return await call_next(request, context)

    async def stream(self, method: Method, request: Message, context: CallContext, call_next: Any) -> Any:
        self.seen.append((context.front, context.client_certificate))
        async for event in call_next(request, context):
            yield event


@contextlib.asynccontextmanager
async def stack(tls: TlsSettings, recorder: Recorder | None = None) -> AsyncIterator[AgentStack]:
    settings = ServerSettings(tls=tls, interceptors=[recorder] if recorder else [], grace_seconds=1.0)
    async with AgentStack(
        ReferenceAgent(), grpc=settings, host="127.0.0.1", grpc_port=0, http_port=0
    ) as running:
        yield running


def assert_is_client(certs: Certs, certificate: ClientCertificate | None) -> None:
    assert certificate is not None
    assert certificate.common_name == "agent-7"
    assert "DNS:agent-7.example" in certificate.sans
    assert certificate.sha256 == hashlib.sha256(certs.client_der).hexdigest()


def jsonrpc(text: str) -> dict[str, Any]:
    message = {"messageId": "m-1", "role": "ROLE_USER", "parts": [{"text": text}]}
    return {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {"message": message}}


def rest(text: str) -> dict[str, Any]:
    return {"message": {"messageId": "m-2", "role": "ROLE_USER", "parts": [{"text": text}]}}


# --- gRPC ---------------------------------------------------------------------------------------------------


@ASYNC
async def test_grpc_over_tls_works_with_the_ca_and_fails_clearly_without_it(certs: Certs) -> None:
    server = A2AServer(ReferenceAgent(), InMemoryTaskStore(), ServerSettings(tls=certs.server()))
    await server.start()
    try:
        # The card names the TLS endpoint as HOST:PORT (the SDK dials the URL as it is).
        assert server.card().supported_interfaces[0].url == server.address
        async with A2AClient(server.address, tls=certs.client(), timeout=WAIT) as client:
            reply = await client.send_message(A2AClient.text_request("echo over tls"))
            assert reply.task.artifacts[0].parts[0].text == "echo over tls"
        async with A2AClient.from_card(server.card(), tls=certs.client(), timeout=WAIT) as client:
            assert (await client.get_agent_card()).name == server.card().name
        for tls in (True, False):  # the system's roots do not know our CA; plaintext is not served
            async with A2AClient(server.address, tls=tls, timeout=WAIT) as client:
                with pytest.raises(errors.UnavailableError):
                    await client.send_message(A2AClient.text_request("hi"))
    finally:
        await server.stop(1.0)


@ASYNC
@pytest.mark.interop
async def test_the_sdk_grpc_client_works_over_tls(certs: Certs) -> None:
    server = A2AServer(ReferenceAgent(), InMemoryTaskStore(), ServerSettings(tls=certs.server()))
    await server.start()
    credentials = grpc.ssl_channel_credentials(await asyncio.to_thread(Path(certs.ca).read_bytes))
    config = ClientConfig(
        streaming=False,
        supported_protocol_bindings=[TransportProtocol.GRPC],
        grpc_channel_factory=lambda url: grpc.aio.secure_channel(url, credentials),
    )
    client = ClientFactory(config).create(interop.to_sdk(server.card()))  # type: ignore[arg-type]
    try:
        request = sdk.SendMessageRequest(
            message=sdk.Message(message_id="m-1", role=sdk.ROLE_USER, parts=[sdk.Part(text="echo sdk tls")])
        )
        events = [e async for e in client.send_message(request, context=ClientCallContext(timeout=WAIT))]
        task = events[-1].task
        assert task.status.state == sdk.TASK_STATE_COMPLETED
        assert task.artifacts[0].parts[0].text == "echo sdk tls"
    finally:
        await client.close()
        await server.stop(1.0)


@ASYNC
async def test_mutual_tls_on_grpc_names_the_client_certificate_to_interceptors(certs: Certs) -> None:
    recorder = Recorder()
    async with stack(certs.server(mutual=True), recorder) as running:
        async with A2AClient(running.grpc_address, tls=certs.client(mutual=True), timeout=WAIT) as client:
            await client.send_message(A2AClient.text_request("unary"))
            events = [
                e
                async for e in client.send_streaming_message(A2AClient.text_request("stream 2"), timeout=WAIT)
            ]
            assert events
        assert [front for front, _ in recorder.seen] == ["grpc", "grpc"]
        for _, certificate in recorder.seen:
            assert_is_client(certs, certificate)
        stranger = ClientTls(certs.ca, certs.stranger_cert, certs.stranger_key)
        for tls in (certs.client(), stranger):  # no client certificate; one from another CA
            async with A2AClient(running.grpc_address, tls=tls, timeout=WAIT) as client:
                with pytest.raises(errors.UnavailableError):
                    await client.send_message(A2AClient.text_request("hi"))
        assert len(recorder.seen) == 2


@ASYNC
async def test_server_only_tls_leaves_the_client_certificate_empty(certs: Certs) -> None:
    recorder = Recorder()
    async with stack(certs.server(), recorder) as running:
        async with A2AClient(running.grpc_address, tls=certs.client(mutual=True), timeout=WAIT) as client:
            await client.send_message(A2AClient.text_request("hi"))
        assert running.http_url is not None
        async with httpx.AsyncClient(verify=certs.client(mutual=True).ssl_context(), timeout=WAIT) as http:
            assert (
                await http.post(running.http_url + "/", json=jsonrpc("hi"), headers=A2A)
            ).status_code == 200
    assert recorder.seen == [("grpc", None), ("http", None)]


# --- HTTP ---------------------------------------------------------------------------------------------------


@ASYNC
async def test_json_bindings_over_https_and_the_card_names_https(certs: Certs) -> None:
    async with stack(certs.server()) as running:
        url = running.http_url
        assert url is not None
        assert url.startswith("https://127.0.0.1:")
        async with httpx.AsyncClient(verify=certs.client().ssl_context(), timeout=WAIT) as http:
            card = (await http.get(url + "/.well-known/agent-card.json")).json()
            assert [(i["protocolBinding"], i["url"]) for i in card["supportedInterfaces"]] == [
                ("GRPC", running.grpc_address),
                ("GRPC", running.grpc_address),  # v0.3 (serve_v03)
                ("urn:a2a-grpc:binding:session:v1", running.grpc_address),
                ("JSONRPC", url + "/"),
                ("HTTP+JSON", url),
                ("JSONRPC", url + "/"),  # for v0.3 clients: https too
                ("HTTP+JSON", url),
            ]
            assert card["url"] == url + "/"
            answer = (await http.post(url + "/", json=jsonrpc("echo rpc"), headers=A2A)).json()
            assert answer["result"]["task"]["artifacts"][0]["parts"][0]["text"] == "echo rpc"
            answer = (await http.post(url + "/message:send", json=rest("echo rest"), headers=A2A)).json()
            assert answer["task"]["artifacts"][0]["parts"][0]["text"] == "echo rest"
        async with httpx.AsyncClient(timeout=WAIT) as http:  # the system's roots do not know our CA
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await http.get(url + "/healthz")


@ASYNC
@pytest.mark.interop
@pytest.mark.parametrize("binding", [TransportProtocol.JSONRPC, TransportProtocol.HTTP_JSON])
async def test_the_sdk_json_clients_work_over_https(certs: Certs, binding: str) -> None:
    async with (
        stack(certs.server()) as running,
        httpx.AsyncClient(verify=certs.client().ssl_context(), timeout=WAIT) as http,
    ):
        assert running.http_url is not None
        card = await A2ACardResolver(http, running.http_url).get_agent_card()
        config = ClientConfig(streaming=False, httpx_client=http, supported_protocol_bindings=[binding])
        client = ClientFactory(config).create(card)
        try:
            request = sdk.SendMessageRequest(
                message=sdk.Message(message_id="m-1", role=sdk.ROLE_USER, parts=[sdk.Part(text="echo json")])
            )
            events = [e async for e in client.send_message(request, context=ClientCallContext(timeout=WAIT))]
            assert events[-1].task.artifacts[0].parts[0].text == "echo json"
        finally:
            await client.close()


@ASYNC
@pytest.mark.parametrize("protocol", ["httptools", "h11"])
async def test_mutual_tls_on_http_names_the_client_certificate_to_interceptors(
    certs: Certs, protocol: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if protocol == "h11":  # HttpServer takes httptools when it is installed: hide it
        hidden = pytypes.SimpleNamespace(util=pytypes.SimpleNamespace(find_spec=lambda name: None))
        monkeypatch.setattr(httpserver, "importlib", hidden)
    recorder = Recorder()
    async with stack(certs.server(mutual=True), recorder) as running:
        url = running.http_url
        assert url is not None
        assert running.http is not None
        assert running.http._server is not None
        used = running.http._server.config.http_protocol_class.__name__
        assert (
            used
            == {"httptools": "TlsScopeHeadTimeoutHttpToolsProtocol", "h11": "TlsScopeHeadTimeoutH11Protocol"}[
                protocol
            ]
        )
        async with httpx.AsyncClient(verify=certs.client(mutual=True).ssl_context(), timeout=WAIT) as http:
            assert (await http.post(url + "/", json=jsonrpc("one"), headers=A2A)).status_code == 200
            assert (await http.post(url + "/message:send", json=rest("two"), headers=A2A)).status_code == 200
            streamed = await http.post(url + "/message:stream", json=rest("stream 1"), headers=A2A)
            assert "data:" in streamed.text
        assert [front for front, _ in recorder.seen] == ["http", "http", "http"]
        for _, certificate in recorder.seen:
            assert_is_client(certs, certificate)
        async with httpx.AsyncClient(verify=certs.client().ssl_context(), timeout=WAIT) as http:
            with pytest.raises(httpx.TransportError):  # TLS 1.3: the refusal arrives at the first read
                await http.post(url + "/", json=jsonrpc("no certificate"), headers=A2A)
        assert len(recorder.seen) == 3


@ASYNC
async def test_the_asgi_scope_carries_the_tls_extension(certs: Certs) -> None:
    scopes: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        scopes.append(scope)
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    server = httpserver.HttpServer(app, "127.0.0.1", 0, tls=certs.server(mutual=True), grace=1.0)
    async with (
        server,
        httpx.AsyncClient(verify=certs.client(mutual=True).ssl_context(), timeout=WAIT) as http,
    ):
        await http.get(server.url + "/a")
        await http.get(server.url + "/b")  # the same connection: the same extension, read once
    assert [s["scheme"] for s in scopes] == ["https", "https"]
    tls = scopes[0]["extensions"]["tls"]
    assert [ssl.PEM_cert_to_DER_cert(pem) for pem in tls["client_cert_chain"]] == [certs.client_der]
    assert "CN=agent-7" in tls["client_cert_name"]
    assert tls["tls_version"] in (0x0303, 0x0304)
    assert (
        scopes[0]["extensions"]["a2a_grpc.client_certificate"]
        is scopes[1]["extensions"]["a2a_grpc.client_certificate"]
    )


# --- the command line -----------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def process(*args: str, banner: str) -> AsyncIterator[list[str]]:
    """``a2a-grpc ARGS`` in the background until it prints ``banner``; its output lines so far.
    Stopped by PID on exit."""
    proc = await asyncio.create_subprocess_exec(
        *CLI,
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    drain: asyncio.Task[None] | None = None
    try:
        async with asyncio.timeout(30):
            while not any(banner in line for line in lines):
                line = (await proc.stdout.readline()).decode(errors="replace")
                assert line, "".join(lines)
                lines.append(line)
        drain = asyncio.create_task(proc.stdout.read())  # type: ignore[arg-type]
        yield lines
    finally:
        await stop_process(proc)
        if drain is not None:
            await asyncio.wait({drain}, timeout=10)


def found(pattern: str, lines: list[str]) -> str:
    match = re.search(pattern, "".join(lines))
    assert match, "".join(lines)
    return match.group(1)


@ASYNC
async def test_the_cli_serves_tls_and_mutual_tls_on_every_port_and_its_client_calls_it(certs: Certs) -> None:
    tls = [
        "--tls-cert",
        certs.cert,
        "--tls-key",
        certs.key,
        "--tls-client-ca",
        certs.ca,
        "--tls-require-client-cert",
    ]
    client = [
        "--tls-ca",
        certs.ca,
        "--tls-client-cert",
        certs.client_cert,
        "--tls-client-key",
        certs.client_key,
    ]
    async with process(
        "serve", "--grpc-port", "0", "--http-port", "0", "--store", "memory", *tls, banner="Ctrl-C"
    ) as lines:
        address = found(r"over gRPC at (\S+)", lines)
        url = found(r"HTTP\+JSON at (https://\S+)", lines)
        assert "--tls-ca CA_FILE --tls-client-cert CERT --tls-client-key KEY" in "".join(lines)
        sent = await run_async("send", address, "echo cli tls", *client)
        assert sent.returncode == 0, sent.stderr
        assert "echo cli tls" in sent.stdout
        by_card = await run_async("send", url, "echo by card", *client)  # card over https, then gRPC + TLS
        assert by_card.returncode == 0, by_card.stderr
        refused = await run_async("send", address, "hi", "--tls-ca", certs.ca)  # no client certificate
        assert refused.returncode == 1
        assert "UnavailableError" in refused.stderr


@ASYNC
async def test_the_cli_refuses_to_start_with_bad_tls_files(certs: Certs, tmp_path: Path) -> None:
    serve = ["serve", "--grpc-port", "0", "--store", "memory"]
    pair = ["--tls-cert", certs.cert, "--tls-key", certs.key]
    cases = [
        (
            ["--tls-cert", str(tmp_path / "no.pem"), "--tls-key", certs.key],
            "certificate file '.*no.pem' does not exist",
        ),
        (
            ["--tls-cert", certs.cert, "--tls-key", certs.client_key],
            "client.key' does not match the certificate",
        ),
        (["--tls-cert", certs.cert], "--tls-cert and --tls-key go together"),
        (
            [*pair, "--tls-client-ca", certs.ca],
            "cannot make client certificates optional.*--tls-require-client-cert",
        ),
        ([*pair, "--tls-require-client-cert"], "--tls-require-client-cert needs --tls-client-ca"),
    ]
    for args, message in cases:
        result = await run_async(*serve, *args)
        assert result.returncode == 1, result.stderr
        assert re.search(message, result.stderr), result.stderr
        assert result.stderr.count("\n") == 1, result.stderr  # one line, no traceback


@ASYNC
async def test_both_bridges_serve_tls_and_call_a_tls_upstream(certs: Certs) -> None:
    serve_tls = ["--tls-cert", certs.cert, "--tls-key", certs.key]
    async with stack(certs.server()) as running:
        assert running.http_url is not None
        async with process(
            "bridge", "http-to-grpc", "--listen", "127.0.0.1:0", "--upstream", running.grpc_address,
            "--tls-ca", certs.ca, *serve_tls, banner="bridging",
        ) as lines:  # fmt: skip
            url = found(r"HTTP\+JSON at (https://\S+)", lines)
            async with httpx.AsyncClient(verify=certs.client().ssl_context(), timeout=WAIT) as http:
                answer = (await http.post(url + "/", json=jsonrpc("echo bridged"), headers=A2A)).json()
                assert answer["result"]["task"]["artifacts"][0]["parts"][0]["text"] == "echo bridged"
        async with process(
            "bridge", "grpc-to-http", "--listen", "127.0.0.1:0", "--upstream", running.http_url,
            "--tls-ca", certs.ca, *serve_tls, banner="bridging",
        ) as lines:  # fmt: skip
            address = found(r"bridging gRPC at (\S+)", lines)
            async with A2AClient(address, tls=certs.client(), timeout=WAIT) as client:
                reply = await client.send_message(A2AClient.text_request("echo reversed"))
                assert reply.task.artifacts[0].parts[0].text == "echo reversed"


def test_the_tls_options_are_in_the_help() -> None:
    for command in (["serve"], ["bridge", "http-to-grpc"], ["bridge", "grpc-to-http"], ["send"], ["card"]):
        out = subprocess.run(
            [*CLI, *command, "--help"], capture_output=True, text=True, timeout=60, check=True
        ).stdout
        for option in ("--tls-ca", "--tls-client-cert", "--tls-client-key"):
            assert option in out, (command, option)
        if command[0] not in ("send", "card"):
            assert "--tls-require-client-cert" in out, command


# --- the mutual-TLS authentication scheme, end to end ----------------------------------------------------


@ASYNC
async def test_the_client_certificate_authenticates_on_every_binding(tmp_path: Path) -> None:
    """``MutualTlsScheme`` on a listener that requires client certificates: the certificate's
    common name picks the principal; a certificate from the right CA that names no listed caller is
    refused with UNAUTHENTICATED / 401 and the MutualTLS challenge; each caller sees its own tasks."""
    from a2a_grpc.security import Authentication, MutualTlsScheme

    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    planner = ca.issue_cert("planner.mesh", common_name="planner-7")
    intruder = ca.issue_cert("intruder.mesh", common_name="intruder")  # the right CA, an unlisted name
    day = datetime.timedelta(days=1)
    now = datetime.datetime.now(datetime.UTC)
    expired = ca.issue_cert(
        "planner.mesh", common_name="planner-7", not_before=now - 2 * day, not_after=now - day
    )
    paths: dict[str, str] = {}
    for name, blob in (
        ("ca.pem", ca.cert_pem),
        ("server.pem", server.cert_chain_pems[0]),
        ("server.key", server.private_key_pem),
        ("planner.pem", planner.cert_chain_pems[0]),
        ("planner.key", planner.private_key_pem),
        ("intruder.pem", intruder.cert_chain_pems[0]),
        ("intruder.key", intruder.private_key_pem),
        ("expired.pem", expired.cert_chain_pems[0]),
        ("expired.key", expired.private_key_pem),
    ):
        blob.write_to_path(str(tmp_path / name))
        paths[name] = str(tmp_path / name)
    scheme = MutualTlsScheme(identity="common_name", principals={"planner-7": "planner"})
    settings = ServerSettings(
        tls=TlsSettings(paths["server.pem"], paths["server.key"], paths["ca.pem"], require_client_cert=True),
        authentication=Authentication([scheme]),
        grace_seconds=1.0,
    )
    as_planner = ClientTls(paths["ca.pem"], paths["planner.pem"], paths["planner.key"])
    as_intruder = ClientTls(paths["ca.pem"], paths["intruder.pem"], paths["intruder.key"])
    async with AgentStack(
        ReferenceAgent(), grpc=settings, host="127.0.0.1", grpc_port=0, http_port=0
    ) as running:
        card = running.card
        assert card.security_schemes["mtls"].WhichOneof("scheme") == "mtls_security_scheme"
        url = running.http_url
        assert url is not None
        async with A2AClient(running.grpc_address, tls=as_planner, timeout=WAIT) as client:
            task = (await client.send_message(A2AClient.text_request("echo mine"))).task
        get = {**jsonrpc(""), "method": "GetTask", "params": {"id": task.id}}
        async with httpx.AsyncClient(verify=as_planner.ssl_context(), timeout=WAIT, headers=A2A) as http:
            by_rpc = await http.post(url + "/", json=get)
            assert by_rpc.json()["result"]["id"] == task.id
            by_rest = await http.get(f"{url}/tasks/{task.id}")
            assert by_rest.status_code == 200
        async with A2AClient(running.grpc_address, tls=as_intruder, timeout=WAIT) as client:
            with pytest.raises(errors.UnauthenticatedError, match="not one this agent accepts") as refused:
                await client.get_task(task.id)
        assert refused.value.challenge == 'MutualTLS realm="a2a"'
        async with httpx.AsyncClient(verify=as_intruder.ssl_context(), timeout=WAIT, headers=A2A) as http:
            answer = await http.get(f"{url}/tasks/{task.id}")
            by_rpc = await http.post(url + "/", json=get)
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"] == 'MutualTLS realm="a2a"'
        assert by_rpc.status_code == 401
        assert by_rpc.json()["error"]["code"] == -32091
        assert by_rpc.headers["www-authenticate"] == 'MutualTLS realm="a2a"'
        # A listed name on an expired certificate: refused by TLS itself, on both listeners.
        as_expired = ClientTls(paths["ca.pem"], paths["expired.pem"], paths["expired.key"])
        async with A2AClient(running.grpc_address, tls=as_expired, timeout=WAIT) as client:
            with pytest.raises(errors.UnavailableError):
                await client.get_task(task.id)
        async with httpx.AsyncClient(verify=as_expired.ssl_context(), timeout=WAIT, headers=A2A) as http:
            with pytest.raises(httpx.TransportError):
                await http.get(f"{url}/tasks/{task.id}")


@ASYNC
@pytest.mark.parametrize(
    "binding", [TransportProtocol.GRPC, TransportProtocol.JSONRPC, TransportProtocol.HTTP_JSON]
)
async def test_the_sdk_clients_work_over_mutual_tls_and_are_known_by_their_certificate(
    certs: Certs, binding: str
) -> None:
    """The official SDK's clients with a client certificate, against listeners that require one and
    a mutual-TLS scheme that names the caller by it: served, and the task is the certificate's."""
    from a2a_grpc.security import Authentication, MutualTlsScheme

    recorder = Recorder()
    settings = ServerSettings(
        tls=certs.server(mutual=True),
        authentication=Authentication([MutualTlsScheme()]),
        interceptors=[recorder],
        grace_seconds=1.0,
    )
    mutual = certs.client(mutual=True)
    async with (
        AgentStack(ReferenceAgent(), grpc=settings, host="127.0.0.1", grpc_port=0, http_port=0) as running,
        httpx.AsyncClient(verify=mutual.ssl_context(), timeout=WAIT) as http,
    ):
        assert running.http_url is not None
        card = await A2ACardResolver(http, running.http_url).get_agent_card()
        credentials = grpc.ssl_channel_credentials(
            *[
                await asyncio.to_thread(Path(p).read_bytes)
                for p in (certs.ca, certs.client_key, certs.client_cert)
            ]
        )
        config = ClientConfig(
            streaming=False,
            httpx_client=http,
            supported_protocol_bindings=[binding],
            grpc_channel_factory=lambda url: grpc.aio.secure_channel(url, credentials),
        )
        client = ClientFactory(config).create(card)
        try:
            request = sdk.SendMessageRequest(
                message=sdk.Message(
                    message_id="m-1", role=sdk.ROLE_USER, parts=[sdk.Part(text="echo mutual")]
                )
            )
            events = [e async for e in client.send_message(request, context=ClientCallContext(timeout=WAIT))]
            assert events[-1].task.artifacts[0].parts[0].text == "echo mutual"
        finally:
            await client.close()
        async with A2AClient(running.grpc_address, tls=mutual, timeout=WAIT) as ours:
            mine = await ours.list_tasks()  # the same certificate: the same principal, agent-7
        assert [t.id for t in mine.tasks] == [events[-1].task.id]
    assert recorder.seen
    for _, certificate in recorder.seen:
        assert_is_client(certs, certificate)
