"""The public surface: ``a2a_grpc`` exports what an agent author and a client user need, loaded
on first use; every name it lists resolves, and unknown ones are a plain AttributeError."""

from __future__ import annotations

import subprocess
import sys

import pytest

import a2a_grpc


@pytest.mark.parametrize("name", a2a_grpc.__all__)
def test_every_public_name_resolves(name: str) -> None:
    value = getattr(a2a_grpc, name)
    assert value is not None
    assert name in dir(a2a_grpc)


def test_the_names_are_the_ones_of_their_modules() -> None:
    from a2a_grpc.agent import Agent
    from a2a_grpc.client import A2AClient
    from a2a_grpc.server import A2AServer

    assert (a2a_grpc.Agent, a2a_grpc.A2AClient, a2a_grpc.A2AServer) == (Agent, A2AClient, A2AServer)
    assert a2a_grpc.types.Task.DESCRIPTOR.full_name == "lf.a2a.v1.Task"


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'nothing_here'"):
        _ = a2a_grpc.nothing_here  # type: ignore[attr-defined]


def test_importing_the_package_loads_no_server_side_code() -> None:
    code = (
        "import sys, a2a_grpc\n"
        "a2a_grpc.A2AClient\n"
        "print(sorted(m for m in sys.modules if m in ('sqlite3', 'a2a_grpc.server', 'a2a_grpc._handler')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"
