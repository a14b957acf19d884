"""new_id: random version-4 UUIDs, unique across threads and across a fork."""

from __future__ import annotations

import os
import threading
import uuid

import pytest

from a2a_grpc.agent import new_id


def test_ids_are_canonical_version_4_uuids() -> None:
    variants = set()
    for _ in range(5000):  # more than one batch of random bytes
        text = new_id()
        parsed = uuid.UUID(text)
        assert str(parsed) == text  # lower-case, hyphenated, 36 characters
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
        variants.add(text[19])
    assert variants == set("89ab")  # every variant digit occurs: its two low bits stay random


def test_ids_do_not_repeat_within_or_across_threads() -> None:
    per_thread: list[list[str]] = [[] for _ in range(4)]

    def draw(into: list[str]) -> None:
        into.extend(new_id() for _ in range(3000))

    threads = [threading.Thread(target=draw, args=(ids,)) for ids in per_thread]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    everything = [text for ids in per_thread for text in ids]
    assert len(everything) == 12000
    assert len(set(everything)) == 12000


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_does_not_repeat_its_parents_ids() -> None:
    new_id()  # the parent holds a batch of unread random bytes now
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next ids and leave at once
        try:
            os.write(write, ",".join(new_id() for _ in range(8)).encode())
        finally:
            os._exit(0)
    os.close(write)
    try:
        with os.fdopen(read, "rb") as pipe:
            child = pipe.read().decode().split(",")
    finally:
        os.waitpid(pid, 0)
    parent = [new_id() for _ in range(8)]
    assert len(child) == 8
    assert not set(child) & set(parent)
