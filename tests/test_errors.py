"""Tests for a2a_grpc.errors: the table against the spec, wire round trips, and SDK interop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import grpc.aio
import pytest
import pytest_asyncio
from a2a.client.client import ClientCallContext
from a2a.client.errors import A2AClientError
from a2a.client.transports.grpc import GrpcTransport
from a2a.client.transports.jsonrpc import JsonRpcTransport
from a2a.server.request_handlers.grpc_handler import GrpcHandler
from a2a.types import a2a_pb2 as sdk_pb2
from a2a.types import a2a_pb2_grpc as sdk_grpc
from a2a.utils import errors as sdk_errors
from a2a.utils.error_handlers import build_error_details
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]
from grpc_status import rpc_status

from a2a_grpc import errors, types
from a2a_grpc.bridge.errordetails import ERROR_INFO_TYPE
from a2a_grpc.bridge.jsonrpc import from_jsonrpc_error, to_jsonrpc_error
from a2a_grpc.bridge.rest import from_rest_error, http_status_for, to_rest_error
from a2a_grpc.errors import A2AError, ErrorSpec, FieldViolation
from a2a_grpc.status import abort, from_rpc_error, to_rpc_status

SC = grpc.StatusCode
CALL_TIMEOUT = 5.0

# The spec's tables, copied by hand: v1.0.1 section 5.4 (A2A-specific) and 9.5 (standard JSON-RPC).
# name: (class, JSON-RPC code, gRPC code, ErrorInfo reason, HTTP status, problem type URI)
SPEC: dict[str, tuple[type[A2AError], int, grpc.StatusCode, str, int, str]] = {
    "TaskNotFoundError": (
        errors.TaskNotFoundError,
        -32001,
        SC.NOT_FOUND,
        "TASK_NOT_FOUND",
        404,
        "https://a2a-protocol.org/errors/task-not-found",
    ),
    "TaskNotCancelableError": (
        errors.TaskNotCancelableError,
        -32002,
        SC.FAILED_PRECONDITION,
        "TASK_NOT_CANCELABLE",
        400,
        "https://a2a-protocol.org/errors/task-not-cancelable",
    ),
    "PushNotificationNotSupportedError": (
        errors.PushNotificationNotSupportedError,
        -32003,
        SC.FAILED_PRECONDITION,
        "PUSH_NOTIFICATION_NOT_SUPPORTED",
        400,
        "https://a2a-protocol.org/errors/push-notification-not-supported",
    ),
    "UnsupportedOperationError": (
        errors.UnsupportedOperationError,
        -32004,
        SC.FAILED_PRECONDITION,
        "UNSUPPORTED_OPERATION",
        400,
        "https://a2a-protocol.org/errors/unsupported-operation",
    ),
    "ContentTypeNotSupportedError": (
        errors.ContentTypeNotSupportedError,
        -32005,
        SC.INVALID_ARGUMENT,
        "CONTENT_TYPE_NOT_SUPPORTED",
        400,
        "https://a2a-protocol.org/errors/content-type-not-supported",
    ),
    "InvalidAgentResponseError": (
        errors.InvalidAgentResponseError,
        -32006,
        SC.INTERNAL,
        "INVALID_AGENT_RESPONSE",
        500,
        "https://a2a-protocol.org/errors/invalid-agent-response",
    ),
    "ExtendedAgentCardNotConfiguredError": (
        errors.ExtendedAgentCardNotConfiguredError,
        -32007,
        SC.FAILED_PRECONDITION,
        "EXTENDED_AGENT_CARD_NOT_CONFIGURED",
        400,
        "https://a2a-protocol.org/errors/extended-agent-card-not-configured",
    ),
    "ExtensionSupportRequiredError": (
        errors.ExtensionSupportRequiredError,
        -32008,
        SC.FAILED_PRECONDITION,
        "EXTENSION_SUPPORT_REQUIRED",
        400,
        "https://a2a-protocol.org/errors/extension-support-required",
    ),
    "VersionNotSupportedError": (
        errors.VersionNotSupportedError,
        -32009,
        SC.FAILED_PRECONDITION,
        "VERSION_NOT_SUPPORTED",
        400,
        "https://a2a-protocol.org/errors/version-not-supported",
    ),
    # Standard JSON-RPC errors: the spec fixes codes; gRPC/HTTP follow section 3.3.2's categories and
    # reasons follow a2a-sdk (the spec names none for these).
    "JSONParseError": (errors.ParseError, -32700, SC.INVALID_ARGUMENT, "JSON_PARSE", 400, ""),
    "InvalidRequestError": (
        errors.InvalidRequestError,
        -32600,
        SC.INVALID_ARGUMENT,
        "INVALID_REQUEST",
        400,
        "",
    ),
    "MethodNotFoundError": (
        errors.MethodNotFoundError,
        -32601,
        SC.UNIMPLEMENTED,
        "METHOD_NOT_FOUND",
        404,
        "",
    ),
    "InvalidParamsError": (errors.InvalidParamsError, -32602, SC.INVALID_ARGUMENT, "INVALID_PARAMS", 400, ""),
    "InternalError": (errors.InternalError, -32603, SC.INTERNAL, "INTERNAL_ERROR", 500, ""),
}

ROWS = {row.name: row for row in errors.ERROR_TABLE}


def _sample(row: ErrorSpec) -> A2AError:
    """A precise error of ``row``'s class with metadata, plus field violations for invalid params."""
    violations = [FieldViolation("message.parts", "At least one part is required")]
    return row.exc_type(
        f"{row.name} for task 'abc'",
        metadata={"taskId": "abc", "attempt": 2},
        field_violations=violations if row.exc_type is errors.InvalidParamsError else (),
    )


class FakeRpcError(grpc.RpcError):  # type: ignore[misc]  # grpc has no stubs
    """What a client sees: the status code, the details, the trailing metadata."""

    def __init__(self, code: grpc.StatusCode, details: str, trailers: tuple[tuple[str, Any], ...] = ()):
        super().__init__(details)
        self._code, self._details, self._trailers = code, details, trailers

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> tuple[tuple[str, Any], ...]:
        return self._trailers


def _over_the_wire(exc: BaseException) -> A2AError:
    status = to_rpc_status(exc)
    return from_rpc_error(FakeRpcError(status.code, status.details, tuple(status.trailing_metadata)))


def _assert_same(got: A2AError, sent: A2AError) -> None:
    assert type(got) is type(sent)
    assert got.message == sent.message
    assert got.metadata == sent.metadata
    assert got.field_violations == sent.field_violations


# --- the table ---------------------------------------------------------------------------------


def test_table_has_exactly_the_spec_rows() -> None:
    assert [row.name for row in errors.ERROR_TABLE] == list(SPEC)
    assert len({row.exc_type for row in errors.ERROR_TABLE}) == len(SPEC)
    assert all(row.reason == "" for row in errors.TRANSPORT_ERRORS)


@pytest.mark.parametrize("name", list(SPEC))
def test_row_wire_facts_match_spec(name: str) -> None:
    cls, jsonrpc, grpc_code, reason, http, problem = SPEC[name]
    row = ROWS[name]
    assert (row.exc_type, row.jsonrpc_code, row.grpc_code, row.reason, row.http_status, row.problem_type) == (
        cls,
        jsonrpc,
        grpc_code,
        reason,
        http,
        problem,
    )
    assert cls.spec is row
    assert errors.spec_for_type(cls) is row
    assert errors.spec_for_reason(reason) is row
    assert errors.spec_for_jsonrpc_code(jsonrpc) is row
    assert http_status_for(cls("x")) == http
    assert cls().message == row.default_message


@pytest.mark.parametrize("row", errors.ERROR_TABLE, ids=lambda r: r.name)
def test_grpc_status_round_trip(row: ErrorSpec) -> None:
    sent = _sample(row)
    status = to_rpc_status(sent)
    assert status.code == row.grpc_code
    assert status.details == sent.message
    [(key, blob)] = status.trailing_metadata
    assert key == "grpc-status-details-bin"
    rich = status_pb2.Status.FromString(blob)
    assert rich.code == row.grpc_code.value[0]
    assert rich.message == sent.message
    info = error_details_pb2.ErrorInfo()
    assert rich.details[0].Unpack(info)
    assert (info.reason, info.domain, dict(info.metadata)) == (
        row.reason,
        "a2a-protocol.org",
        {"taskId": "abc", "attempt": "2"},
    )
    got = _over_the_wire(sent)
    _assert_same(got, sent)
    assert got.grpc_code == row.grpc_code


@pytest.mark.parametrize("row", errors.ERROR_TABLE, ids=lambda r: r.name)
def test_jsonrpc_round_trip(row: ErrorSpec) -> None:
    sent = _sample(row)
    obj = to_jsonrpc_error(sent)
    assert obj["code"] == row.jsonrpc_code
    assert obj["message"] == sent.message
    assert obj["data"][0] == {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": row.reason,
        "domain": "a2a-protocol.org",
        "metadata": {"taskId": "abc", "attempt": "2"},
    }
    _assert_same(from_jsonrpc_error(obj), sent)
    _assert_same(from_jsonrpc_error({"jsonrpc": "2.0", "id": 1, "error": obj}), sent)


def test_limit_errors_name_their_limit_and_retry_advice_on_every_wire() -> None:
    limited = errors.RateLimitedError("slow down", limit="requests_per_second", value=5, retry_after=1.2)
    facts = (limited.limit, limited.retry_after, limited.metadata["limit_value"])
    assert facts == ("requests_per_second", 2, "5")
    status = to_rpc_status(limited)
    assert status.code == SC.RESOURCE_EXHAUSTED
    rich = status_pb2.Status.FromString(dict(status.trailing_metadata)["grpc-status-details-bin"])
    retry = error_details_pb2.RetryInfo()
    assert any(d.Unpack(retry) for d in rich.details)
    assert retry.retry_delay.seconds == 2
    for got in (_over_the_wire(limited), from_jsonrpc_error(to_jsonrpc_error(limited))):
        assert isinstance(got, errors.RateLimitedError)
        assert (got.limit, got.retry_after, got.message) == ("requests_per_second", 2, "slow down")
    assert http_status_for(limited) == 429
    too_big = errors.LimitExceededError("too many parts", limit="max_parts", value=1000)
    got = _over_the_wire(too_big)
    assert type(got) is errors.LimitExceededError
    assert (got.limit, got.grpc_code, http_status_for(got)) == ("max_parts", SC.RESOURCE_EXHAUSTED, 413)
    assert from_rest_error(*to_rest_error(too_big)).limit == "max_parts"


def test_bad_request_carries_field_violations() -> None:
    sent = errors.InvalidParamsError(
        "Invalid request parameters", field_violations=[FieldViolation("message.parts", "At least one part")]
    )
    rich = status_pb2.Status.FromString(to_rpc_status(sent).trailing_metadata[0][1])
    bad = error_details_pb2.BadRequest()
    assert rich.details[1].Unpack(bad)
    pairs = [(v.field, v.description) for v in bad.field_violations]
    assert pairs == [("message.parts", "At least one part")]
    assert to_jsonrpc_error(sent)["data"][1] == {
        "@type": "type.googleapis.com/google.rpc.BadRequest",
        "fieldViolations": [{"field": "message.parts", "description": "At least one part"}],
    }


def test_unknown_exception_is_internal_and_leaks_nothing(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="a2a_grpc.errors"):
        status = to_rpc_status(KeyError("secret"))
        obj = to_jsonrpc_error(KeyError("secret"))
    assert status.code == SC.INTERNAL
    assert status.details == "internal error"
    assert b"secret" not in b"".join(v for _, v in status.trailing_metadata)
    assert "secret" not in repr(obj)
    assert obj["code"] == -32603
    assert http_status_for(KeyError("secret")) == 500
    assert any(r.exc_info and "secret" in str(r.exc_info[1]) for r in caplog.records)


# --- decoding without ErrorInfo -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "cls", "http"),
    [
        (SC.NOT_FOUND, errors.TaskNotFoundError, 404),
        (SC.INVALID_ARGUMENT, errors.InvalidParamsError, 400),
        (SC.UNIMPLEMENTED, errors.MethodNotFoundError, 404),
        (SC.INTERNAL, errors.InternalError, 500),
        (SC.UNAVAILABLE, errors.UnavailableError, 503),
        (SC.DEADLINE_EXCEEDED, errors.DeadlineExceededError, 504),
        (SC.PERMISSION_DENIED, errors.PermissionDeniedError, 403),
        (SC.UNAUTHENTICATED, errors.UnauthenticatedError, 401),
        (SC.FAILED_PRECONDITION, errors.TransportError, 400),
        (SC.UNKNOWN, errors.TransportError, 502),
    ],
)
def test_bare_status_code_fallback(code: grpc.StatusCode, cls: type[A2AError], http: int) -> None:
    got = from_rpc_error(FakeRpcError(code, "boom"))
    assert type(got) is cls
    assert (got.message, got.grpc_code) == ("boom", code)
    assert http_status_for(got) == http
    if isinstance(got, errors.TransportError):
        again = _over_the_wire(got)
        assert (type(again), again.grpc_code, again.message) == (cls, code, "boom")


def test_transport_errors_are_not_in_the_spec_table() -> None:
    for cls in (errors.UnavailableError, errors.DeadlineExceededError, errors.TransportError):
        assert cls.spec not in errors.ERROR_TABLE
        assert errors.spec_for_reason(cls.spec.reason) is None
    assert errors.spec_for_jsonrpc_code(-32603) is ROWS["InternalError"]


def test_sdk_v03_message_prefix_is_recognised() -> None:
    got = from_rpc_error(FakeRpcError(SC.NOT_FOUND, "TaskNotCancelableError: task 't1' is done"))
    assert type(got) is errors.TaskNotCancelableError
    assert got.message == "task 't1' is done"


def test_foreign_domain_and_broken_trailers_fall_back_to_the_code() -> None:
    info = error_details_pb2.ErrorInfo(reason="TASK_NOT_FOUND", domain="example.com")
    status = status_pb2.Status(code=SC.INTERNAL.value[0], message="x")
    status.details.add().Pack(info)
    got = from_rpc_error(
        FakeRpcError(SC.INTERNAL, "x", (("grpc-status-details-bin", status.SerializeToString()),))
    )
    assert type(got) is errors.InternalError
    broken = (("grpc-status-details-bin", b"\xff\xff"),)
    got = from_rpc_error(FakeRpcError(SC.NOT_FOUND, "gone", broken))
    assert (type(got), got.message) == (errors.TaskNotFoundError, "gone")


# --- bounds ----------------------------------------------------------------------------------------


def test_a_long_message_is_cut_in_the_middle_so_its_verdict_survives() -> None:
    err = errors.TaskNotFoundError(f"task {'x' * 100_000!r} not found", metadata={"task_id": "\u00e9" * 1000})
    assert len(err.message.encode()) <= errors.MAX_MESSAGE_BYTES
    assert err.message.startswith("task 'xxx")
    assert err.message.endswith("xxx' not found")
    assert "\u2026" in err.message
    assert len(err.metadata["task_id"].encode()) <= errors.MAX_DETAIL_BYTES
    assert errors.TaskNotFoundError("short").message == "short"


def test_echo_quotes_short() -> None:
    assert errors.echo("abc") == "'abc'"
    assert errors.echo("y" * 1000) == repr("y" * errors.ECHO_CHARS) + "\u2026 (1000 characters)"


# --- the codes of v1.0.0, still decoded --------------------------------------------------------

V100_GRPC = {
    "PushNotificationNotSupportedError": SC.UNIMPLEMENTED,
    "UnsupportedOperationError": SC.UNIMPLEMENTED,
    "VersionNotSupportedError": SC.UNIMPLEMENTED,
}
"""Where v1.0.0 gave another gRPC code than v1.0.1 (section 5.4)."""
V100_HTTP = {
    "TaskNotCancelableError": 409,
    "ContentTypeNotSupportedError": 415,
    "InvalidAgentResponseError": 502,
}
"""Where v1.0.0 gave another HTTP status than v1.0.1."""


def _v100_status(name: str) -> status_pb2.Status:
    """A rich status as a v1.0.0 peer sends it: the old code, and the ErrorInfo every version has."""
    status = status_pb2.Status(code=V100_GRPC[name].value[0], message=f"old {name}")
    status.details.add().Pack(
        error_details_pb2.ErrorInfo(reason=ROWS[name].reason, domain=errors.DOMAIN, metadata={"k": "v"})
    )
    return status


@pytest.mark.parametrize("name", list(V100_GRPC))
def test_v100_grpc_codes_decode_to_the_class_of_the_reason(name: str) -> None:
    status = _v100_status(name)
    trailer = (("grpc-status-details-bin", status.SerializeToString()),)
    got = from_rpc_error(FakeRpcError(V100_GRPC[name], status.message, trailer))
    assert (type(got), got.message, got.metadata) == (SPEC[name][0], f"old {name}", {"k": "v"})
    assert got.grpc_code == SC.UNIMPLEMENTED  # what arrived is kept ...
    assert to_rpc_status(got).code == SC.FAILED_PRECONDITION  # ... what we send is v1.0.1
    assert http_status_for(got) == 400


@pytest.mark.parametrize("name", list(V100_HTTP))
def test_v100_http_statuses_decode_to_the_class_of_the_reason(name: str) -> None:
    row = ROWS[name]
    old = V100_HTTP[name]
    info = {
        "@type": ERROR_INFO_TYPE,
        "reason": row.reason,
        "domain": errors.DOMAIN,
        "metadata": {"k": "v"},
    }
    body = {"error": {"code": old, "status": row.grpc_code.name, "message": f"old {name}", "details": [info]}}
    got = from_rest_error(old, body)
    assert (type(got), got.message, got.metadata) == (row.exc_type, f"old {name}", {"k": "v"})
    assert to_rest_error(got)[0] == row.http_status  # re-sent with the v1.0.1 status
    problem = {"type": row.problem_type, "title": row.default_message, "status": old, "detail": f"old {name}"}
    assert type(from_rest_error(old, problem)) is row.exc_type
    for code_name in ("UNIMPLEMENTED", "FAILED_PRECONDITION", "INTERNAL", "INVALID_ARGUMENT"):
        body["error"]["status"] = code_name  # whatever code name came with it, the reason decides
        assert type(from_rest_error(old, body)) is row.exc_type


def test_jsonrpc_decoding_is_tolerant() -> None:
    flat = from_jsonrpc_error({"code": -32001, "message": "Task not found", "data": {"taskId": "t"}})
    assert (type(flat), flat.metadata) == (errors.TaskNotFoundError, {"taskId": "t"})
    nested = from_jsonrpc_error(
        {
            "code": -32000,
            "message": "m",
            "data": {
                "details": [
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "VERSION_NOT_SUPPORTED",
                        "domain": "a2a-protocol.org",
                        "metadata": {"supported": "1.0"},
                    }
                ]
            },
        }
    )
    assert (type(nested), nested.metadata) == (errors.VersionNotSupportedError, {"supported": "1.0"})
    unknown = from_jsonrpc_error({"code": -31999, "message": "odd"})
    assert (type(unknown), unknown.message) == (errors.InternalError, "odd")


# --- a real grpc.aio server ---------------------------------------------------------------------

SERVICE, METHOD = "lf.a2a.v1.A2AService", "GetTask"
PATH = f"/{SERVICE}/{METHOD}"


def _error_named(name: str) -> BaseException:
    if name == "KeyError":
        return KeyError("secret")
    if name in ROWS:
        return _sample(ROWS[name])
    transport: type[A2AError] = getattr(errors, name)
    return transport("downstream is down", metadata={"ignored": "yes"})


async def _raise_named(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    """GetTask whose task id names the error to raise, so the SDK's client can call it too."""
    name = types.GetTaskRequest.FromString(request).id
    if name.startswith("v1.0.0:"):
        await context.abort_with_status(rpc_status.to_status(_v100_status(name.removeprefix("v1.0.0:"))))
    if name.startswith("trailer:"):
        context.set_trailing_metadata((("x-trace-id", "t-1"),))
        name = name.removeprefix("trailer:")
    await abort(context, _error_named(name))


async def _start(register: Callable[[grpc.aio.Server], None]) -> tuple[grpc.aio.Server, str]:
    server = grpc.aio.server()
    register(server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"127.0.0.1:{port}"


@pytest_asyncio.fixture
async def target() -> AsyncIterator[str]:
    handler = grpc.method_handlers_generic_handler(
        SERVICE, {METHOD: grpc.unary_unary_rpc_method_handler(_raise_named)}
    )
    server, address = await _start(lambda s: s.add_generic_rpc_handlers((handler,)))
    try:
        yield address
    finally:
        await server.stop(None)


async def _call(address: str, task_id: str) -> grpc.aio.AioRpcError:
    async with grpc.aio.insecure_channel(address) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await channel.unary_unary(PATH)(
                types.GetTaskRequest(id=task_id).SerializeToString(), timeout=CALL_TIMEOUT
            )
    return info.value


@pytest.mark.asyncio
async def test_aio_round_trip_every_row(target: str) -> None:
    for row in errors.ERROR_TABLE:
        err = await _call(target, row.name)
        assert err.code() == row.grpc_code
        got = from_rpc_error(err)
        _assert_same(got, _sample(row))
        assert got.grpc_code == row.grpc_code


@pytest.mark.asyncio
async def test_aio_v100_codes_decode_to_the_class_of_the_reason(target: str) -> None:
    for name in V100_GRPC:
        err = await _call(target, f"v1.0.0:{name}")
        assert err.code() == SC.UNIMPLEMENTED
        got = from_rpc_error(err)
        assert (type(got), got.message, got.grpc_code) == (SPEC[name][0], f"old {name}", SC.UNIMPLEMENTED)


@pytest.mark.asyncio
async def test_aio_transport_errors(target: str) -> None:
    for name, code in (("UnavailableError", SC.UNAVAILABLE), ("DeadlineExceededError", SC.DEADLINE_EXCEEDED)):
        got = from_rpc_error(await _call(target, name))
        assert (type(got).__name__, got.grpc_code, got.message, got.metadata) == (
            name,
            code,
            "downstream is down",
            {},
        )


@pytest.mark.asyncio
async def test_aio_unknown_exception(target: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="a2a_grpc.errors"):
        err = await _call(target, "KeyError")
    assert err.code() == SC.INTERNAL
    assert err.details() == "internal error"
    trailer = b"".join(v if isinstance(v, bytes) else v.encode() for _, v in err.trailing_metadata())
    assert b"secret" not in trailer
    got = from_rpc_error(err)
    assert (type(got), got.message) == (errors.InternalError, "internal error")
    assert any(r.exc_info for r in caplog.records)


@pytest.mark.asyncio
async def test_aio_abort_keeps_trailing_metadata(target: str) -> None:
    err = await _call(target, "trailer:TaskNotFoundError")
    assert ("x-trace-id", "t-1") in tuple(err.trailing_metadata())
    assert type(from_rpc_error(err)) is errors.TaskNotFoundError


class _NoAbortContext:
    def trailing_metadata(self) -> tuple[()]:
        return ()

    async def abort_with_status(self, status: object) -> None:
        raise AssertionError("must not abort")


@pytest.mark.asyncio
async def test_abort_reraises_cancellation() -> None:
    cancelled = asyncio.CancelledError()
    with pytest.raises(asyncio.CancelledError) as info:
        await abort(_NoAbortContext(), cancelled)
    assert info.value is cancelled


# --- interop with the official SDK --------------------------------------------------------------

SDK_COUNTERPART: dict[str, type[sdk_errors.A2AError]] = {
    name: getattr(sdk_errors, name) for name in SPEC if name != "JSONParseError"
}


@pytest.mark.asyncio
async def test_sdk_grpc_client_decodes_our_errors(target: str) -> None:
    """The SDK's GrpcTransport (its real ``_map_grpc_error``) raises the matching SDK class."""
    transport = GrpcTransport(grpc.aio.insecure_channel(target), None)
    try:
        for name, sdk_cls in SDK_COUNTERPART.items():
            with pytest.raises(sdk_errors.A2AError) as info:
                await transport.get_task(
                    sdk_pb2.GetTaskRequest(id=name), context=ClientCallContext(timeout=CALL_TIMEOUT)
                )
            assert type(info.value) is sdk_cls, name
            assert info.value.message == f"{name} for task 'abc'"
            if name == "InvalidParamsError":
                assert info.value.data == {
                    "errors": [{"field": "message.parts", "message": "At least one part is required"}]
                }
        # The SDK has no reason for parse errors; it falls back to its generic client error.
        with pytest.raises(A2AClientError):
            await transport.get_task(
                sdk_pb2.GetTaskRequest(id="JSONParseError"), context=ClientCallContext(timeout=CALL_TIMEOUT)
            )
    finally:
        await transport.close()


class _RaisingRequestHandler:
    """Stands in for the SDK's RequestHandler: on_get_task raises the SDK error the task id names."""

    async def on_get_task(self, request: sdk_pb2.GetTaskRequest, context: object) -> None:
        if request.id == "InvalidParamsError":
            raise sdk_errors.InvalidParamsError(
                "bad params", data={"errors": [{"field": "history_length", "message": "must be >= 0"}]}
            )
        raise getattr(sdk_errors, request.id)(f"sdk {request.id}")


@pytest.mark.asyncio
async def test_we_decode_sdk_grpc_server_errors() -> None:
    sdk_handler = GrpcHandler(_RaisingRequestHandler())  # type: ignore[arg-type]
    server, address = await _start(lambda s: sdk_grpc.add_A2AServiceServicer_to_server(sdk_handler, s))  # type: ignore[no-untyped-call]
    try:
        for name in SDK_COUNTERPART:
            err = await _call(address, name)
            got = from_rpc_error(err)
            assert type(got) is SPEC[name][0], name
            assert got.grpc_code == err.code()
            if name == "InvalidParamsError":
                assert got.field_violations == (FieldViolation("history_length", "must be >= 0"),)
            else:
                assert got.message == f"sdk {name}"
        # The SDK sends the v1.0.1 codes, as we do: what it sends is what we would send.
        for name in (
            "UnsupportedOperationError",
            "PushNotificationNotSupportedError",
            "VersionNotSupportedError",
        ):
            got = from_rpc_error(await _call(address, name))
            assert (type(got), got.grpc_code) == (SPEC[name][0], SC.FAILED_PRECONDITION)
            assert to_rpc_status(got).code == SC.FAILED_PRECONDITION
    finally:
        await server.stop(None)


@pytest.mark.parametrize("name", list(SDK_COUNTERPART))
def test_jsonrpc_interop_with_sdk(name: str) -> None:
    ours = to_jsonrpc_error(_sample(ROWS[name]))
    sdk_exc = JsonRpcTransport._create_jsonrpc_error(None, ours)  # type: ignore[arg-type]
    assert type(sdk_exc) is SDK_COUNTERPART[name]
    assert sdk_exc.data == {"taskId": "abc", "attempt": "2"}
    sdk_cls = SDK_COUNTERPART[name]
    sdk_obj = {
        "code": ROWS[name].jsonrpc_code,
        "message": "from sdk",
        "data": build_error_details(sdk_cls("from sdk", data={"taskId": "t"})),
    }
    got = from_jsonrpc_error(sdk_obj)
    assert (type(got), got.message, got.metadata) == (SPEC[name][0], "from sdk", {"taskId": "t"})
