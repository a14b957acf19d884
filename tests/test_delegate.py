"""The reference agent's ``delegate``: an allowlist (empty by default), one failure text whatever
the cause (no port oracle), a bounded delegation depth, TLS to peers; and the address parser and
allowlist it stands on."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator

import pytest
import trustme

from a2a_grpc import errors, types
from a2a_grpc.client import A2AClient
from a2a_grpc.reference_agent import DELEGATION_DEPTH_HEADER, DelegationPolicy, ReferenceAgent
from a2a_grpc.security.peers import PeerAllowlist, parse_peer_address
from a2a_grpc.security.tls import ClientTls, TlsSettings
from a2a_grpc.session.server import SessionHost
from tests.conftest import Served, serve, shutdown
from tests.test_cli_first_hour import run

ASYNC = pytest.mark.asyncio


@contextlib.asynccontextmanager
async def served(agent: ReferenceAgent, **settings: object) -> AsyncIterator[Served]:
    running = await serve(agent, **settings)
    try:
        yield running
    finally:
        await shutdown(running)


@contextlib.contextmanager
def listening_port() -> Iterator[int]:
    """A port something listens on (and never answers A2A)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


def closed_port() -> int:
    """A port nothing listens on (bound once, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def delegate(client: A2AClient, address: str, text: str = "echo hi") -> types.Task:
    return (await client.send_message(A2AClient.text_request(f"delegate {address} {text}"))).task


def peer_host(peer: Served) -> SessionHost:
    assert peer.server.sessions is not None
    return peer.server.sessions


def peer_sessions(peer: Served) -> list[object]:
    """The sessions the peer's server holds open now."""
    return list(peer_host(peer).sessions)


def said(task: types.Task) -> str:
    return " ".join(p.text for p in task.status.message.parts)


# --- the policy ---------------------------------------------------------------------------------------


@ASYNC
async def test_delegation_is_refused_until_configured_with_one_text_for_open_and_closed_ports() -> None:
    async with (
        served(ReferenceAgent()) as nowhere,
        served(ReferenceAgent(DelegationPolicy(allow=["10.9.0.0/16", "peer.invalid:1"]))) as elsewhere,
    ):
        with listening_port() as open_port:
            shut = closed_port()
            texts = set()
            for running in (nowhere, elsewhere):
                for port in (open_port, shut):
                    task = await delegate(running.client, f"127.0.0.1:{port}")
                    assert task.status.state == types.TASK_STATE_FAILED
                    texts.add(said(task).replace(str(port), "PORT"))
        assert texts == {"delegation to 127.0.0.1:PORT failed"}
        assert (await nowhere.client.list_tasks()).total_size == 2  # the two requests, nothing more


@ASYNC
async def test_an_allowed_peer_that_is_down_fails_with_the_same_text() -> None:
    port = closed_port()
    async with served(ReferenceAgent(DelegationPolicy(allow=[f"127.0.0.1:{port}"], timeout=5))) as running:
        task = await delegate(running.client, f"127.0.0.1:{port}")
    assert task.status.state == types.TASK_STATE_FAILED
    assert said(task) == f"delegation to 127.0.0.1:{port} failed"


@ASYNC
async def test_an_allowed_peer_is_reached_by_address_network_or_name() -> None:
    async with served(ReferenceAgent()) as peer:
        port = peer.server.port
        for entries, address in (
            ([f"127.0.0.1:{port}"], f"127.0.0.1:{port}"),
            (["127.0.0.0/8"], f"127.0.0.1:{port}"),
            (["127.0.0.1"], f"localhost:{port}"),  # a name not listed, resolving to an allowed address
            ([f"localhost:{port}"], f"LOCALHOST:{port}"),  # a listed name
        ):
            async with served(ReferenceAgent(DelegationPolicy(allow=entries))) as running:
                task = await delegate(running.client, address, "echo relayed")
                assert task.status.state == types.TASK_STATE_COMPLETED, (entries, said(task))
                assert task.artifacts[0].parts[0].text == "echo relayed"
        assert (await peer.client.list_tasks()).total_size == 4
        wrong_port = ReferenceAgent(DelegationPolicy(allow=[f"127.0.0.1:{port + 1}", "localhost"]))
        async with served(wrong_port) as running:
            task = await delegate(running.client, f"127.0.0.1:{port}")
            assert said(task) == f"delegation to 127.0.0.1:{port} failed"
        assert (await peer.client.list_tasks()).total_size == 4


@ASYNC
async def test_a_self_delegation_loop_stops_at_the_depth_bound() -> None:
    agent = ReferenceAgent()
    async with served(agent) as running:
        me = running.server.address
        agent.delegation = DelegationPolicy(allow=[me])
        task = await delegate(running.client, me, f"delegate {me} " * 30 + "echo bottom")
        assert task.status.state == types.TASK_STATE_FAILED
        listed = await running.client.list_tasks()
    # The request, then one task per allowed level (depth 1 and 2); the third delegation is refused.
    assert listed.total_size == 3
    texts = [said(t) for t in listed.tasks]
    assert any("already 2 delegations deep (the limit is 2)" in t for t in texts), texts


@ASYNC
async def test_a_request_deeper_than_the_bound_is_refused_whatever_it_asks() -> None:
    async with served(ReferenceAgent(DelegationPolicy(max_depth=1))) as running:
        for depth, refused in (("1", False), ("2", True), ("x", True), ("99999", True)):
            task = (
                await running.client.send_message(
                    A2AClient.text_request("echo hi"), metadata=[(DELEGATION_DEPTH_HEADER, depth)]
                )
            ).task
            state = types.TASK_STATE_FAILED if refused else types.TASK_STATE_COMPLETED
            assert task.status.state == state, (depth, said(task))
            if refused:
                assert "beyond this agent's limit of 1" in said(task)


@ASYNC
async def test_delegation_uses_tls_to_its_peers(tmp_path_factory: pytest.TempPathFactory) -> None:
    folder = tmp_path_factory.mktemp("delegate-certs")
    ca = trustme.CA()
    server = ca.issue_cert("localhost")  # the name only: reached at 127.0.0.1, verified as localhost
    for name, blob in (
        ("ca.pem", ca.cert_pem),
        ("s.pem", server.cert_chain_pems[0]),
        ("s.key", server.private_key_pem),
    ):
        blob.write_to_path(str(folder / name))
    tls = TlsSettings(str(folder / "s.pem"), str(folder / "s.key"))
    async with served(ReferenceAgent(), tls=tls) as peer:
        port = peer.server.port
        trusted = DelegationPolicy(allow=["localhost"], tls=ClientTls(str(folder / "ca.pem")))
        async with served(ReferenceAgent(trusted)) as running:
            task = await delegate(running.client, f"localhost:{port}", "echo secure")
            assert task.status.state == types.TASK_STATE_COMPLETED, said(task)
            assert task.artifacts[0].parts[0].text == "echo secure"
        async with served(ReferenceAgent(DelegationPolicy(allow=["localhost"], timeout=5))) as plain:
            task = await delegate(plain.client, f"localhost:{port}")
            assert said(task) == f"delegation to localhost:{port} failed"


@ASYNC
async def test_a_malformed_address_is_an_invalid_params_error(reference: Served) -> None:
    for address in ("127.0.0.1", "127.0.0.1:0", "http://127.0.0.1:80", "127.1:80", "a_b:80"):
        with pytest.raises(errors.InvalidParamsError, match="'delegate' takes HOST:PORT"):
            await delegate(reference.client, address)


# --- the parser and the allowlist ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("127.0.0.1:50052", ("127.0.0.1", 50052)),
        ("[::1]:5", ("::1", 5)),
        ("[::ffff:10.0.0.1]:9", ("10.0.0.1", 9)),
        ("Peer.Internal:80", ("peer.internal", 80)),
    ],
)
def test_peer_addresses_parse(text: str, parsed: tuple[str, int]) -> None:
    assert parse_peer_address(text) == parsed


@pytest.mark.parametrize(
    "text",
    ["", "h", "h:0", "h:65536", "h:080", "h:+1", "::1:80", "[::1]", "[x]:1", "127.1:80", "2130706433:80",
     "a b:1", "a..b:1", "-a.b:1", "user@h:1", "http://h:1", "h:1/x", "h\u00e9:1", "h:1\n"],
)  # fmt: skip
def test_peer_addresses_are_parsed_strictly(text: str) -> None:
    with pytest.raises(ValueError, match=r"address|port|IPv6|host name"):
        parse_peer_address(text)


def test_allowlist_entries() -> None:
    allow = PeerAllowlist.of(["127.0.0.1:50052, 10.1.0.0/16", "peer.internal", "::1", "[fd00::1]:7"])
    assert allow.entries == ("127.0.0.1:50052", "10.1.0.0/16", "peer.internal", "::1", "[fd00::1]:7")
    assert allow.allows_name("peer.internal", 1)
    assert not allow.allows_name("other.internal", 1)
    for bad in ("10.1.0.1/16", "h:0", "a b", "*.internal"):
        with pytest.raises(ValueError, match="allowlist entry"):
            PeerAllowlist.of([bad])
    assert not PeerAllowlist()


def test_serve_refuses_a_bad_allowlist_entry() -> None:
    result = run("serve", "--grpc-port", "0", "--store", "memory", "--delegate-allow", "10.0.0.1/8")
    assert result.returncode == 1
    assert "--delegate-allow: allowlist entry '10.0.0.1/8'" in result.stderr


@ASYNC
async def test_delegation_presents_the_credentials_the_peers_card_asks_for() -> None:
    from a2a_grpc.security import ApiKey, ApiKeyScheme, Authentication, Credentials

    key = "peer-key-0123456789abcdef"
    auth = Authentication([ApiKeyScheme([ApiKey("planner", key=key)], header="X-Peer-Key")])
    async with served(ReferenceAgent(), authentication=auth) as peer:
        allow = [f"127.0.0.1:{peer.server.port}"]
        address = f"127.0.0.1:{peer.server.port}"
        without = ReferenceAgent(DelegationPolicy(allow=allow))
        wrong = ReferenceAgent(DelegationPolicy(allow=allow, credentials=Credentials(bearer_token="t" * 20)))
        right = ReferenceAgent(DelegationPolicy(allow=allow, credentials=Credentials(api_key=key)))
        for agent, state in (
            (without, types.TASK_STATE_FAILED),  # refused by the peer: the same one text
            (wrong, types.TASK_STATE_FAILED),  # the card asks for an API key; a token meets nothing
            (right, types.TASK_STATE_COMPLETED),  # sent in the header the peer's card names
        ):
            async with served(agent) as running:
                task = await delegate(running.client, address, "echo with a key")
                assert task.status.state == state, said(task)
                if state == types.TASK_STATE_FAILED:
                    assert said(task) == f"delegation to {address} failed"
                    assert key not in said(task)
        planner = Credentials(api_key=key, api_key_header="X-Peer-Key")
        async with A2AClient(peer.server.address, credentials=planner) as client:
            listed = await client.list_tasks()
        # planner's one task (the refused attempts created none at the peer)
        assert [t.status.state for t in listed.tasks] == [types.TASK_STATE_COMPLETED]


@ASYNC
async def test_delegation_goes_over_one_pooled_session_per_peer_closed_with_the_server() -> None:
    from a2a_grpc.service import Interceptor

    fronts: list[tuple[str, str, str]] = []

    class Fronts(Interceptor):
        async def unary(self, method, request, context, call_next):
            fronts.append((context.front, method.name, context.call_id.partition("/")[0]))
            return await call_next(request, context)

    async with served(ReferenceAgent(), interceptors=[Fronts()]) as peer:
        address = f"127.0.0.1:{peer.server.port}"
        agent = ReferenceAgent(DelegationPolicy(allow=[address]))
        async with served(agent) as running:
            tasks = [await delegate(running.client, address, f"echo by session {i}") for i in range(3)]
            assert len(agent.peers) == 1
            assert len(peer_sessions(peer)) == 1  # the three calls shared one session
        for i, task in enumerate(tasks):
            assert task.status.state == types.TASK_STATE_COMPLETED, said(task)
            assert task.artifacts[0].parts[0].text == f"echo by session {i}"
        sent = [f for f in fronts if f[1] == "SendMessage"]
        assert [f[0] for f in sent] == ["session"] * 3  # the card offered the session binding: used
        assert len({f[2] for f in sent}) == 1  # under one session id
        # The delegating server stopped: it closed its pooled session (the peer holds none now).
        for _ in range(100):
            if not peer_sessions(peer):
                break
            await asyncio.sleep(0.05)
        assert not peer_sessions(peer)
        assert len(agent.peers) == 0


@ASYNC
async def test_a_pooled_session_that_died_is_opened_again_for_the_next_delegation() -> None:
    async with served(ReferenceAgent()) as peer:
        address = f"127.0.0.1:{peer.server.port}"
        agent = ReferenceAgent(DelegationPolicy(allow=[address]))
        async with served(agent) as running:
            first = await delegate(running.client, address, "echo one")
            (key,) = agent.peers.keys()
            link = agent.peers.held(key)
            assert link is not None
            assert link.session is not None
            assert link.alive
            await peer_host(peer).close("the peer drops its sessions")  # the session dies
            for _ in range(100):  # the delegating side reads the Goodbye and the stream's end
                if not link.alive:
                    break
                await asyncio.sleep(0.02)
            assert not link.alive
            second = await delegate(running.client, address, "echo two")
            reopened = agent.peers.held(key)
            assert reopened is not None
            assert reopened is not link  # a new session replaced the dead one
            assert reopened.alive
        assert [t.status.state for t in (first, second)] == [types.TASK_STATE_COMPLETED] * 2, said(second)
        assert second.artifacts[0].parts[0].text == "echo two"
