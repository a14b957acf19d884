"""What the bridge's HTTP front needs to serve a v0.3 client beside v1.0 ones.

A v0.3 request is told apart by its JSON-RPC method name (``message/send``: the two sets of names
are disjoint) or, on HTTP+JSON, by a ``/v1/...`` path without an ``A2A-Version`` of major 1
(:func:`is_v03_rest`). It is translated to the v1.0 request by :mod:`a2a_grpc.v03` and sent to
the SAME upstream call the v1.0 bindings make, with :func:`v03_call`'s headers: ``a2a-version:
1.0`` (the core and a gRPC upstream handle v1.0: the translation happened here) and the v0.3
extension header ``X-A2A-Extensions`` read as ``A2A-Extensions``, and ``Call.wire_version`` "0.3",
which an in-process upstream passes on as :attr:`a2a_grpc.service.CallContext.wire_version` (logs
and metrics); a remote upstream cannot be told.
"""

from __future__ import annotations

import dataclasses

from a2a_grpc import errors
from a2a_grpc.bridge.exchange import HttpRequest, requested_version
from a2a_grpc.bridge.upstream import Call, check_header
from a2a_grpc.service import SUPPORTED_VERSIONS
from a2a_grpc.v03.card import V03_VERSION, is_v03_version

__all__ = ["V03_PREFIX", "WIRE_VERSION", "check_v03_version", "is_v03_rest", "v03_call"]

WIRE_VERSION = V03_VERSION
"""The :attr:`CallContext.wire_version` of a call a v0.3 client made."""
V03_PREFIX = "/v1/"
"""Where the v0.3 HTTP+JSON routes live."""
_LEGACY_EXTENSIONS = "x-a2a-extensions"


def check_v03_version(version: str | None) -> None:
    """VersionNotSupportedError unless ``version`` (the request's ``A2A-Version``) is absent,
    empty or of major 0: a v0.3 method or route cannot be asked for in another version."""
    if version is None or is_v03_version(version):
        return
    raise errors.VersionNotSupportedError(
        f"A2A version {errors.echo(version)} is not supported by the v0.3 method or route called: "
        f"call it without A2A-Version (or 0.3), or use the v{SUPPORTED_VERSIONS[-1]} binding",
        metadata={"supported_versions": V03_VERSION},
    )


def is_v03_rest(request: HttpRequest) -> bool:
    """Whether an HTTP+JSON request goes to the v0.3 routes: a ``/v1/`` path, and no
    ``A2A-Version`` or one of major 0 (major 1 is v1.0's tenant ``v1``). The version is read only
    for ``/v1/`` paths: most requests are not."""
    if not request.path.startswith(V03_PREFIX):
        return False
    version = requested_version(request)
    return version is None or is_v03_version(version)


def v03_call(request: HttpRequest, call: Call) -> Call:
    """``call`` as the v1.0 call the translated request makes (see the module docstring)."""
    headers = dict(call.headers)
    headers["a2a-version"] = SUPPORTED_VERSIONS[-1]
    legacy = request.headers.get(_LEGACY_EXTENSIONS)
    if legacy is not None and "a2a-extensions" not in headers:
        check_header("a2a-extensions", legacy)
        headers["a2a-extensions"] = legacy
    return dataclasses.replace(call, headers=headers, wire_version=WIRE_VERSION)
