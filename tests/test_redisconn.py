"""The Redis URL grammar, the key layout (escaping, hash tags) and a real connection."""

from __future__ import annotations

import asyncio
import re

import pytest
import redis
from redis.crc import key_slot

from a2a_grpc.redisconn import Tag, connect, key, parse_redis_url, redis_problem, tag


def test_plain_url_keeps_its_database_and_takes_the_default_prefix() -> None:
    target = parse_redis_url("redis://127.0.0.1:6380/2")
    assert (target.url, target.prefix, target.cluster) == ("redis://127.0.0.1:6380/2", "a2a", False)


def test_our_parameters_are_taken_out_and_the_rest_kept() -> None:
    target = parse_redis_url("rediss://u:secret@h:6379/0?prefix=billing&cluster=true&ssl_cert_reqs=none")
    assert target.prefix == "billing"
    assert target.cluster
    assert target.url == "rediss://u:secret@h:6379/0?ssl_cert_reqs=none"
    assert "secret" not in target.shown
    assert target.shown == "rediss://u:***@h:6379/0"


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://h:1", "scheme 'http'"),
        ("redis://", "names no host"),
        ("redis://h:99999", "invalid port"),
        ("redis://h/abc", "database number"),
        ("redis://h/0?prefix=", "prefix"),
        ("redis://h/0?prefix=a{b}", "without braces"),
        ("redis://h/0?prefix=" + "x" * 65, "1 to 64"),
        ("redis://h/0?cluster=maybe", "true or false"),
        ("unix:///tmp/r.sock?cluster=1", "over TCP"),
        ("", "a Redis URL is needed"),
    ],
)
def test_bad_urls_are_refused_with_one_line(url: str, says: str) -> None:
    with pytest.raises(ValueError, match=re.escape(says)) as caught:
        parse_redis_url(url)
    assert "\n" not in str(caught.value)


def test_password_never_shown_in_refusals() -> None:
    with pytest.raises(ValueError, match="database number") as caught:
        parse_redis_url("redis://u:hunter2@h/abc")
    assert "hunter2" not in str(caught.value)


def test_parts_are_escaped_so_different_ids_never_make_one_key() -> None:
    assert key("a2a", "task", "a:b", "c") != key("a2a", "task", "a", "b:c")
    assert key("a2a", "task", "100%3A") != key("a2a", "task", "100:")


def test_a_string_that_looks_like_a_tag_is_still_escaped() -> None:
    hostile = "{evil}"
    assert key("a2a", "task", hostile) == "a2a:task:%7Bevil%7D"
    assert isinstance(tag("t"), Tag)
    assert key("a2a", "task", tag("t"), "x") == "a2a:task:{t}:x"


@pytest.mark.parametrize("task_id", ["plain", "with:colon", "with}brace", "{x}", "%7B", "é" * 40])
def test_every_key_of_one_tag_is_in_one_slot(task_id: str) -> None:
    t = tag("tenant", task_id)
    slots = {key_slot(key("a2a", group, t, "x").encode()) for group in ("task", "events", "lease")}
    assert len(slots) == 1


@pytest.mark.asyncio
async def test_connects_to_a_real_server(redis_url: str) -> None:
    client = connect(redis_url + "?prefix=x")
    try:
        assert await client.ping()
    finally:
        await client.aclose()


@pytest.mark.asyncio
async def test_an_unreachable_server_is_named_in_one_line(redis_server: object) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = connect(f"redis://127.0.0.1:{port}/0", connect_timeout=1)
    try:
        with pytest.raises(redis.exceptions.ConnectionError) as caught:
            await client.ping()
    finally:
        await client.aclose()
    assert redis_problem(caught.value).startswith("cannot connect")


@pytest.mark.asyncio
async def test_a_burst_past_the_bound_waits_for_a_connection_rather_than_failing(redis_url: str) -> None:
    client = connect(redis_url, max_connections=4)
    try:
        answers = await asyncio.gather(*(client.execute_command("PING") for _ in range(200)))
        assert all(answers)
        assert client.connection_pool.max_connections == 4
    finally:
        await client.aclose()


@pytest.mark.asyncio
async def test_no_bound_holds_more_blocking_readers_than_redis_pys_own_pool(redis_url: str) -> None:
    client = connect(redis_url, max_connections=None)
    try:
        # 120 readers each holding a connection while they wait (redis-py's own pool fails the 101st).
        reads = [client.xread({f"s{i}": "0-0"}, block=500) for i in range(120)]
        assert await asyncio.gather(*reads) == [[]] * 120
    finally:
        await client.aclose()
