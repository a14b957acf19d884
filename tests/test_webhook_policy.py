"""The webhook policy (spec 13.2, SSRF): which URLs a push notification config may name, how
deliveries are pinned to the checked address, signed, and logged without their secrets."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import socket
from collections.abc import Sequence
from pathlib import Path

import grpc
import httpx
import pytest

from a2a_grpc import errors, types
from a2a_grpc.client import A2AClient
from a2a_grpc.push import PushNotifier, PushStats
from a2a_grpc.security import webhooks
from a2a_grpc.security.addresses import literal_address
from a2a_grpc.security.redact import redact_url
from a2a_grpc.security.webhooks import (
    SIGNATURE_HEADER,
    WebhookPolicy,
    WebhookRefusedError,
    WebhookResolveError,
    sign,
    verify_signature,
)
from tests.conftest import Served
from tests.test_push import status_event, webhook
from tests.webhook import Receiver, until

LOOPBACK = WebhookPolicy(allow=("127.0.0.0/8",))
SECRET = b"0123456789abcdef-signing-secret"
PUBLIC = "93.184.215.14"  # a global unicast address; nothing connects to it here


def fast(
    policy: WebhookPolicy | None = None,
    *,
    client: httpx.AsyncClient | None = None,
    signing_secret: bytes | None = None,
    max_attempts: int = 5,
) -> PushNotifier:
    """A notifier with short backoffs and timeouts."""
    return PushNotifier(
        client=client,
        initial_backoff=0.01,
        max_backoff=0.05,
        timeout=2.0,
        max_attempts=max_attempts,
        policy=policy,
        signing_secret=signing_secret,
    )


def answers(*batches: Sequence[str]) -> webhooks.Resolver:
    """A resolver that gives each batch in turn (the last one from then on), and counts its calls."""
    calls: list[tuple[str, int]] = []

    async def resolve(host: str, port: int) -> Sequence[str]:
        calls.append((host, port))
        return batches[min(len(calls), len(batches)) - 1]

    resolve.calls = calls  # type: ignore[attr-defined]
    return resolve


# -- static checks ----------------------------------------------------------------------------------

HOSTILE: list[tuple[str, str]] = [
    # IPv4 ranges
    ("http://127.0.0.1/", "a loopback address 127.0.0.1 (127.0.0.0/8)"),
    ("http://127.255.255.254:8080/x", "a loopback address 127.255.255.254"),
    ("http://10.0.0.1/", "a private address 10.0.0.1 (10.0.0.0/8)"),
    ("http://172.16.5.4/", "a private address 172.16.5.4 (172.16.0.0/12)"),
    ("https://192.168.1.1/", "a private address 192.168.1.1 (192.168.0.0/16)"),
    ("http://169.254.169.254/latest/meta-data/", "a link-local address 169.254.169.254 (169.254.0.0/16)"),
    ("http://100.64.0.1/", "a shared (carrier-grade NAT) address 100.64.0.1 (100.64.0.0/10)"),
    ("http://0.0.0.0/", "a 'this network' address 0.0.0.0 (0.0.0.0/8)"),
    ("http://0.1.2.3/", "a 'this network' address 0.1.2.3"),
    ("http://224.0.0.1/", "a multicast address 224.0.0.1"),
    ("http://255.255.255.255/", "the broadcast address 255.255.255.255"),
    ("http://240.0.0.1/", "a reserved address 240.0.0.1 (240.0.0.0/4)"),
    ("http://192.0.2.1/", "a documentation address 192.0.2.1"),
    ("http://198.51.100.7/", "a documentation address 198.51.100.7"),
    ("http://203.0.113.9/", "a documentation address 203.0.113.9"),
    ("http://198.18.0.1/", "a benchmarking address 198.18.0.1 (198.18.0.0/15)"),
    ("http://192.0.0.8/", "an IETF protocol assignment address 192.0.0.8"),
    # IPv4 in the spellings resolvers accept
    ("http://2130706433/", "a loopback address 127.0.0.1"),
    ("http://0177.0.0.1/", "a loopback address 127.0.0.1"),
    ("http://0x7f.1/", "a loopback address 127.0.0.1"),
    ("http://127.1/", "a loopback address 127.0.0.1"),
    ("http://0x7F000001/", "a loopback address 127.0.0.1"),
    ("http://017700000001/", "a loopback address 127.0.0.1"),
    ("http://0xA9.0xFE.0xA9.0xFE/", "a link-local address 169.254.169.254"),
    ("http://167772161/", "a private address 10.0.0.1"),
    ("http://127.0.0.1./", "a loopback address 127.0.0.1"),
    ("http://1.2.3.256/", "has a malformed IPv4 address"),
    ("http://08.0.0.1/", "has a malformed IPv4 address"),
    # IPv6 ranges, and IPv6 forms that embed an IPv4 address
    ("http://[::1]/", "a loopback address ::1"),
    ("http://[::]/", "the unspecified address ::"),
    ("http://[fc00::1]/", "a private (unique local) address fc00::1"),
    ("http://[fd12:3456::1]:8443/", "a private (unique local) address fd12:3456::1"),
    ("http://[fe80::1]/", "a link-local address fe80::1 (fe80::/10)"),
    ("http://[fec0::1]/", "a site-local address (deprecated) fec0::1"),
    ("http://[ff02::1]/", "a multicast address ff02::1"),
    ("http://[2001:db8::1]/", "a documentation address 2001:db8::1"),
    ("http://[100::1]/", "a discard-only address 100::1"),
    ("http://[::ffff:127.0.0.1]/", "a loopback address 127.0.0.1 (127.0.0.0/8) inside the IPv4-mapped"),
    ("http://[::ffff:7f00:1]/", "a loopback address 127.0.0.1 (127.0.0.0/8) inside the IPv4-mapped"),
    ("http://[::ffff:169.254.169.254]/", "a link-local address 169.254.169.254"),
    ("http://[::127.0.0.1]/", "an IPv4-compatible address (deprecated)"),
    ("http://[2002:7f00:1::]/", "a loopback address 127.0.0.1 (127.0.0.0/8) inside the 6to4 address"),
    ("http://[2002:a9fe:a9fe::1]/", "a link-local address 169.254.169.254 (169.254.0.0/16) inside the 6to4"),
    ("http://[64:ff9b::7f00:1]/", "a loopback address 127.0.0.1 (127.0.0.0/8) inside the NAT64 address"),
    ("http://[64:ff9b::10.0.0.1]/", "a private address 10.0.0.1 (10.0.0.0/8) inside the NAT64 address"),
    ("http://[64:ff9b:1::1]/", "a local-use NAT64 address"),
    ("http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", "a Teredo address"),
    # user info: credentials belong in `authentication`
    ("http://admin:s3cr3t@127.0.0.1:1/", "carries user info"),
    ("https://s3cr3t@hooks.example.com/", "carries user info"),
    ("http://hooks.example.com@127.0.0.1/", "carries user info"),
    # zone ids, malformed hosts and ports
    ("http://[fe80::1%25eth0]/", "carries an IPv6 zone id"),
    ("http://[::1", "has a malformed IPv6 address"),
    ("http://[::1]x/", "has a malformed IPv6 address"),
    ("http://[1:2:3]/", "has a malformed IPv6 address"),
    ("http://::1/", "has a malformed host (IPv6 addresses go in brackets)"),
    ("http://hooks.example.com:99999/", "has port 99999 (ports are 1 to 65535)"),
    ("http://hooks.example.com:0/", "has port 0"),
    ("http://hooks.example.com:http/", "has a malformed port"),
    ("http://hooks.example.com:/", "has a malformed port"),
    ("http://", "has no host"),
    ("http:///s3cr3t", "has no host"),
    ("http://:80/", "has no host"),
    ("http://%31%32%37.0.0.1/", "has a malformed host name"),
    ("http://hooks..example.com/", "has a malformed host name"),
    ("http://localhost:8080/s3cr3t", "names localhost, a loopback host"),
    ("http://api.localhost/", "names api.localhost, a loopback host"),
    # schemes and characters
    ("ftp://hooks.example.com/", "must be an http:// or https:// URL"),
    ("javascript:alert(1)", "must be an http:// or https:// URL"),
    ("file:///etc/passwd", "must be an http:// or https:// URL"),
    ("http:hooks.example.com/", "must be an http:// or https:// URL"),
    ("hooks.example.com/hook", "must be an http:// or https:// URL"),
    ("http://hooks.example.com/a b", "contains spaces, control or non-ASCII characters"),
    ("http://hooks.example.com/\ns3cr3t", "contains spaces, control or non-ASCII characters"),
    (" http://hooks.example.com/", "contains spaces, control or non-ASCII characters"),
    ("http://hooks.exämple.com/", "contains spaces, control or non-ASCII characters"),
    ("http://hooks.example.com\\@127.0.0.1/", "contains a backslash"),
    ("http://hooks.example.com/s3cr3t#frag", "carries a fragment"),
    ("https://hooks.example.com/" + "a" * 2048, "is longer than 2048 characters"),
]


def test_at_least_thirty_hostile_urls() -> None:
    assert len(HOSTILE) >= 30


@pytest.mark.parametrize(("url", "reason"), HOSTILE)
@pytest.mark.parametrize("field", ["url", "configuration.task_push_notification_config.url"])
def test_hostile_urls_are_refused_naming_the_field_and_the_reason(url: str, reason: str, field: str) -> None:
    with pytest.raises(errors.InvalidParamsError) as caught:
        WebhookPolicy().check(url, field)
    (violation,) = caught.value.field_violations
    assert violation.field == field
    assert reason in violation.description
    assert caught.value.message == f"invalid {field}: {violation.description}"
    assert "s3cr3t" not in repr(caught.value)  # neither user info nor path is quoted back


@pytest.mark.asyncio
@pytest.mark.parametrize(("url", "reason"), HOSTILE)
async def test_hostile_urls_are_refused_at_delivery_time_too(url: str, reason: str) -> None:
    with pytest.raises(WebhookRefusedError) as caught:
        await WebhookPolicy(resolver=answers([PUBLIC])).resolve(url)
    assert reason in caught.value.reason


@pytest.mark.parametrize(
    "host", ["2130706433", "0177.0.0.1", "0x7f.1", "127.1", "0x7f000001", "017700000001", "10.1", "1.2.3.4"]
)
def test_ipv4_spellings_are_read_as_inet_aton_reads_them(host: str) -> None:
    assert literal_address(host) == ipaddress.IPv4Address(socket.inet_aton(host))


GOOD: list[tuple[str, str, str, str | None]] = [
    # url, request url (pinned), Host header, TLS server name
    ("https://8.8.8.8/hook", "https://8.8.8.8:443/hook", "8.8.8.8", None),
    ("https://h.example.com/T0/x?y=1", f"https://{PUBLIC}:443/T0/x?y=1", "h.example.com", "h.example.com"),
    ("http://hooks.example.com:8080", f"http://{PUBLIC}:8080/", "hooks.example.com:8080", None),
    ("HTTPS://Hooks.Example.COM?q", f"https://{PUBLIC}:443/?q", "hooks.example.com", "hooks.example.com"),
    ("https://[2606:4700::1111]:8443/x", "https://[2606:4700::1111]:8443/x", "[2606:4700::1111]:8443", None),
    ("http://[2002:808:808::1]/", "http://[2002:808:808::1]:80/", "[2002:808:808::1]", None),
    ("http://[64:ff9b::8.8.8.8]/", "http://[64:ff9b::808:808]:80/", "[64:ff9b::8.8.8.8]", None),
    ("http://[::ffff:8.8.8.8]/", "http://8.8.8.8:80/", "[::ffff:8.8.8.8]", None),
]  # fmt: skip


@pytest.mark.asyncio
@pytest.mark.parametrize(("url", "pinned", "host", "sni"), GOOD)
async def test_good_urls_are_accepted_and_pinned(url: str, pinned: str, host: str, sni: str | None) -> None:
    policy = WebhookPolicy(resolver=answers([PUBLIC]))
    policy.check(url)
    target = await policy.resolve(url)
    assert (target.url, target.host_header, target.sni_hostname) == (pinned, host, sni)


# -- names, resolved at delivery -------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_name_resolving_to_loopback_is_refused_at_delivery_not_at_acceptance() -> None:
    policy = WebhookPolicy(resolver=answers(["127.0.0.1"]))
    policy.check("https://rebind.example.com/hook")  # a name: judged when it is resolved
    with pytest.raises(WebhookRefusedError) as caught:
        await policy.resolve("https://rebind.example.com/hook")
    assert caught.value.reason == (
        "host rebind.example.com resolves to a loopback address 127.0.0.1 (127.0.0.0/8)"
    )


@pytest.mark.asyncio
async def test_one_forbidden_address_among_the_answers_is_enough(monkeypatch: pytest.MonkeyPatch) -> None:
    # The resolver every default policy uses, replaced: one public answer and one private.
    monkeypatch.setattr(webhooks, "system_resolver", answers([PUBLIC, "10.0.0.5"]))
    with pytest.raises(WebhookRefusedError, match=r"resolves to a private address 10\.0\.0\.5"):
        await WebhookPolicy().resolve("https://mixed.example.com/")
    monkeypatch.setattr(webhooks, "system_resolver", answers(["fe80::1%eth0"]))
    with pytest.raises(WebhookRefusedError, match="resolves to a link-local address fe80::1"):
        await WebhookPolicy().resolve("https://scoped.example.com/")
    monkeypatch.setattr(webhooks, "system_resolver", answers(["::ffff:127.0.0.1"]))
    with pytest.raises(WebhookRefusedError, match="inside the IPv4-mapped address"):
        await WebhookPolicy().resolve("https://mapped.example.com/")


@pytest.mark.asyncio
async def test_localhost_through_the_real_resolver() -> None:
    with pytest.raises(WebhookRefusedError, match="names localhost"):
        await WebhookPolicy().resolve("http://localhost:8080/hook")
    # Allowed by name, it is resolved by getaddrinfo, and the answer is pinned.
    target = await WebhookPolicy(allow=("localhost",)).resolve("http://localhost:8080/hook")
    assert ipaddress.ip_address(target.address).is_loopback
    assert target.host_header == "localhost:8080"


@pytest.mark.asyncio
async def test_resolution_failures_may_be_retried() -> None:
    async def fails(host: str, port: int) -> Sequence[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    async def hangs(host: str, port: int) -> Sequence[str]:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    with pytest.raises(WebhookResolveError, match=r"cannot resolve nowhere\.example\.com"):
        await WebhookPolicy(resolver=fails).resolve("https://nowhere.example.com/")
    with pytest.raises(WebhookResolveError, match="timed out"):
        await WebhookPolicy(resolver=hangs, resolve_timeout=0.05).resolve("https://slow.example.com/")
    with pytest.raises(WebhookResolveError, match="no address"):
        await WebhookPolicy(resolver=answers([])).resolve("https://empty.example.com/")
    with pytest.raises(WebhookRefusedError, match="not an IP address"):
        await WebhookPolicy(resolver=answers(["not-an-ip"])).resolve("https://odd.example.com/")


# -- the allowlist -----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_the_allowlist_lets_chosen_networks_and_names_through() -> None:
    policy = WebhookPolicy(allow=("10.0.0.0/8", "::1/128", "hooks.internal", "*.svc.cluster.local"))
    policy.check("http://10.1.2.3/")
    policy.check("http://[::1]:9000/")
    policy.check("http://[::ffff:10.9.9.9]/")  # the IPv4-mapped form of an allowed address
    for refused in ("http://127.0.0.1/", "http://169.254.169.254/", "http://[::2]/"):
        with pytest.raises(errors.InvalidParamsError):
            policy.check(refused)
    internal = WebhookPolicy(allow=policy.allow, resolver=answers(["192.168.7.7"]))
    assert (await internal.resolve("http://hooks.internal/h")).address == "192.168.7.7"
    assert (await internal.resolve("http://a.b.svc.cluster.local/h")).address == "192.168.7.7"
    for name in ("svc.cluster.local", "hooks.internal.evil.com", "xsvc.cluster.local"):
        with pytest.raises(WebhookRefusedError, match=r"resolves to a private address 192\.168\.7\.7"):
            await internal.resolve(f"http://{name}/h")


def test_policy_defaults_and_validation() -> None:
    assert WebhookPolicy() == WebhookPolicy((), 2048, 5.0)
    assert WebhookPolicy(allow=["127.0.0.0/8"]).allow == ("127.0.0.0/8",)  # type: ignore[arg-type]
    bad: list[tuple[dict[str, object], str]] = [
        ({"allow": "127.0.0.0/8"}, "allow must be a sequence"),
        ({"allow": ("10.0.0.1/8",)}, "is not a network"),
        ({"allow": ("127.1",)}, "is not a network"),
        ({"allow": ("not a host!",)}, "neither a network nor a host name"),
        ({"allow": ("",)}, "non-empty strings"),
        ({"max_url_length": 0}, "max_url_length must be an integer >= 16"),
        ({"max_url_length": True}, "max_url_length must be an integer >= 16"),
        ({"resolve_timeout": 0}, "resolve_timeout must be a finite number"),
        ({"resolve_timeout": float("inf")}, "resolve_timeout must be a finite number"),
    ]
    for kwargs, message in bad:
        with pytest.raises(ValueError, match=message):
            WebhookPolicy(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least 16 bytes"):
        PushNotifier(signing_secret="short")
    with pytest.raises(TypeError, match="policy must be a WebhookPolicy"):
        PushNotifier(policy=("127.0.0.0/8",))  # type: ignore[arg-type]


# -- through the real server --------------------------------------------------------------------------

OVER_THE_WIRE = [
    "http://169.254.169.254/latest/meta-data/",
    "http://[::ffff:127.0.0.1]/",
    "http://a:b@x.example/",
]


@pytest.mark.asyncio
@pytest.mark.parametrize("url", OVER_THE_WIRE)
async def test_the_server_refuses_hostile_configs_and_stores_nothing(reference: Served, url: str) -> None:
    client = reference.client
    task = (await client.send_message(A2AClient.text_request("ask"))).task
    with pytest.raises(errors.InvalidParamsError) as caught:
        await client.create_task_push_notification_config(
            types.TaskPushNotificationConfig(task_id=task.id, url=url)
        )
    assert caught.value.grpc_code == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in caught.value.field_violations] == ["url"]
    assert not (await client.list_task_push_notification_configs(task.id)).configs

    request = A2AClient.text_request("echo hi")
    request.configuration.task_push_notification_config.url = url
    with pytest.raises(errors.InvalidParamsError) as caught:
        await client.send_message(request)
    assert caught.value.grpc_code == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in caught.value.field_violations] == [
        "configuration.task_push_notification_config.url"
    ]
    follow_up = A2AClient.text_request("more", task_id=task.id)
    follow_up.configuration.task_push_notification_config.url = url
    with pytest.raises(errors.InvalidParamsError):
        await client.send_message(follow_up)
    assert not (await client.list_task_push_notification_configs(task.id)).configs
    assert [t.id for t in (await client.list_tasks()).tasks] == [task.id]  # no task was created


# -- deliveries ---------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_an_allowlisted_loopback_receiver_gets_signed_authorized_deliveries(receiver: Receiver) -> None:
    async with fast(LOOPBACK, signing_secret=SECRET) as notifier:
        notifier.notify(webhook(receiver.url()), status_event(1))
        await until(lambda: notifier.stats.delivered == 1)
    (seen,) = receiver.requests
    assert seen.headers["authorization"] == "Bearer s3cret-credential"  # spec 4.3.3
    assert seen.headers["host"] == f"127.0.0.1:{receiver.port}"
    header = seen.headers[SIGNATURE_HEADER]
    assert verify_signature(SECRET, header, seen.body)
    assert verify_signature(SECRET.decode(), header, seen.body)
    assert not verify_signature(SECRET, header, seen.body.replace(b"step 1", b"step 2"))  # tampered
    assert not verify_signature(b"another-secret-of-16+bytes", header, seen.body)
    t = int(header.split(",")[0].removeprefix("t="))
    assert verify_signature(SECRET, header, seen.body, now=t + 300)
    assert not verify_signature(SECRET, header, seen.body, now=t + 301)  # stale: a replay
    assert not verify_signature(SECRET, header, seen.body, now=t - 301)
    assert json.loads(seen.body)["statusUpdate"]["taskId"] == "task-1"


def test_the_signature_scheme() -> None:
    body = b'{"statusUpdate":{}}'
    header = sign(SECRET, body, timestamp=1_700_000_000)
    import hashlib
    import hmac

    digest = hmac.new(SECRET, b"1700000000." + body, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={digest}"
    now = 1_700_000_100
    assert verify_signature(SECRET, header, body, now=now)
    assert verify_signature(SECRET, f"t=1700000000,v1={'0' * 64},v1={digest}", body, now=now)  # rotation
    broken = [
        "",
        "t=1700000000",
        f"v1={digest}",
        f"t=abc,v1={digest}",
        f"t=1700000000,v1={digest.upper()}",
        f"t=1700000000,v1={digest[:-1]}",
        f"t=-1700000000,v1={digest}",
        "garbage,,=,",
    ]
    for value in broken:
        assert not verify_signature(SECRET, value, body, now=now), value
    with pytest.raises(ValueError, match="tolerance"):
        verify_signature(SECRET, header, body, tolerance=-1)
    with pytest.raises(ValueError, match="empty"):
        verify_signature(b"", header, body)


class Recorder:
    """An httpx transport that answers 204 and keeps every request it was given."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(204)


@pytest.mark.asyncio
async def test_the_connection_goes_to_the_checked_address_and_a_rebinding_is_refused() -> None:
    # The first resolution answers a public address, every later one loopback (DNS rebinding).
    resolver = answers([PUBLIC], ["127.0.0.1"])
    recorder = Recorder()
    async with httpx.AsyncClient(transport=httpx.MockTransport(recorder)) as client:
        notifier = fast(WebhookPolicy(resolver=resolver), client=client)
        notifier.notify(webhook("https://hooks.rebind.example:8443/T0/hook?k=v"), status_event(0))
        await until(lambda: notifier.stats.delivered == 1)
        notifier.notify(webhook("https://hooks.rebind.example:8443/T0/hook?k=v"), status_event(1))
        await asyncio.wait_for(notifier.aclose(), 5)
    (sent,) = recorder.requests
    assert str(sent.url) == f"https://{PUBLIC}:8443/T0/hook?k=v"  # the address that was checked
    assert sent.headers["host"] == "hooks.rebind.example:8443"
    assert sent.extensions["sni_hostname"] == "hooks.rebind.example"  # TLS verifies the name
    assert resolver.calls == [("hooks.rebind.example", 8443)] * 2  # type: ignore[attr-defined]
    assert notifier.stats == PushStats(delivered=1, failed=1, refused=1)  # refused, never retried


@pytest.mark.asyncio
async def test_a_name_is_delivered_to_the_address_it_resolved_to(receiver: Receiver) -> None:
    # No DNS knows this name: the request reaches the receiver only through the pinned address.
    policy = WebhookPolicy(allow=("127.0.0.0/8",), resolver=answers(["127.0.0.1"]))
    async with fast(policy) as notifier:
        notifier.notify(webhook(f"http://hooks.pinned.invalid:{receiver.port}/p"), status_event())
        await until(lambda: notifier.stats.delivered == 1)
    (seen,) = receiver.requests
    assert (seen.path, seen.headers["host"]) == ("/p", f"hooks.pinned.invalid:{receiver.port}")


@pytest.mark.asyncio
async def test_a_redirect_is_not_followed(receiver: Receiver) -> None:
    receiver.script = [(302, {"Location": "http://169.254.169.254/latest/meta-data/"})]
    async with fast(LOOPBACK) as notifier:
        notifier.notify(webhook(receiver.url()), status_event())
    assert [r.path for r in receiver.requests] == ["/hook"]
    assert notifier.stats == PushStats(failed=1)


@pytest.mark.asyncio
async def test_a_refused_target_is_a_counted_logged_failure(caplog: pytest.LogCaptureFixture) -> None:
    url = "http://admin:s3cr3t@10.0.0.1:8080/s3cr3t-path?token=s3cr3t"
    with caplog.at_level(logging.DEBUG):
        async with fast() as notifier:
            notifier.notify(webhook(url, config_id="cfg-r"), status_event())
    assert notifier.stats == PushStats(failed=1, refused=1)
    (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.getMessage() == (
        "push notification failed after 1 attempt(s): task=task-1 config=cfg-r url=http://10.0.0.1:8080/… "
        "last=refused: carries user info: credentials belong in authentication, not in the URL"
    )
    assert "s3cr3t" not in caplog.text


@pytest.mark.asyncio
async def test_logs_never_carry_the_secret_parts_of_the_url(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.script = [(500, {})] * 3
    url = receiver.url("secret-path-token?k=secret")
    with caplog.at_level(logging.DEBUG):  # every logger, httpx's and httpcore's included
        async with fast(LOOPBACK, max_attempts=3) as notifier:
            notifier.notify(webhook(url), status_event())
            await until(lambda: notifier.stats.failed == 1)
        notifier.notify(webhook(url), status_event())  # closed: dropped and logged
    assert len(receiver.requests) == 3
    assert [r.path for r in receiver.requests] == ["/secret-path-token"] * 3
    assert f"url=http://127.0.0.1:{receiver.port}/… last=HTTP 500" in caplog.text
    assert any(r.name == "httpx" for r in caplog.records)  # httpx did log the requests, redacted
    assert "secret-path-token" not in caplog.text
    assert "secret" not in caplog.text


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://hooks.example.com/services/T000/B000/XXXX", "https://hooks.example.com/…"),
        ("http://user:pw@127.0.0.1:8080/p?q=1", "http://127.0.0.1:8080/…"),
        ("https://hooks.example.com", "https://hooks.example.com"),
        ("https://hooks.example.com/", "https://hooks.example.com"),
        ("https://hooks.example.com?token=x", "https://hooks.example.com/…"),
        ("http://[::1]:9/x", "http://[::1]:9/…"),
        ("HTTP://Hooks.Example.com/x", "http://hooks.example.com/…"),
        ("not a url", "<unparsable url>"),
        ("http://[::1/", "<unparsable url>"),
        ("http://h:99999/", "<unparsable url>"),
        ("http://ho\nst/", "<unparsable url>"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


# -- the command line ---------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_serve_flags_build_the_notifier(tmp_path: Path) -> None:
    from a2a_grpc.cli import parse
    from a2a_grpc.cli.common import CliError
    from a2a_grpc.cli.config import configuration
    from a2a_grpc.cli.serving import push_notifier

    def notifier_of(argv: list[str]) -> PushNotifier:
        args = parse(argv)
        return push_notifier(args, configuration(args))  # type: ignore[no-any-return]

    secret = tmp_path / "secret"
    secret.write_bytes(SECRET + b"\n")
    notifier = notifier_of(
        ["serve", "--webhook-allow", "127.0.0.0/8", "--webhook-allow", "hooks.internal",
         "--webhook-signing-secret-file", str(secret)]
    )  # fmt: skip
    try:
        assert notifier.policy.allow == ("127.0.0.0/8", "hooks.internal")
        assert notifier._signing_key == SECRET
    finally:
        await notifier.aclose()
    default = notifier_of(["serve"])
    assert default.policy == WebhookPolicy()
    await default.aclose()
    with pytest.raises(CliError, match=r"webhooks: allow entry '10\.0\.0\.1/8' is not a network"):
        notifier_of(["serve", "--webhook-allow", "10.0.0.1/8"])
    with pytest.raises(CliError, match="cannot read the webhook signing secret"):
        notifier_of(["serve", "--webhook-signing-secret-file", str(tmp_path / "none")])
    secret.write_text("short\n")
    with pytest.raises(CliError, match="at least 16 bytes"):
        notifier_of(["serve", "--webhook-signing-secret-file", str(secret)])
