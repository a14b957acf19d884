"""Every error of our table in its v0.3 forms (JSON-RPC, gRPC, HTTP+JSON) and back; what the
official SDKs' v0.3 forms decode to; and what our v1.0 decoders make of the v0.3 forms."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from a2a.compat.v0_3 import types as v03

from a2a_grpc import errors
from a2a_grpc.bridge.jsonrpc import from_jsonrpc_error
from a2a_grpc.bridge.rest import from_rest_error
from a2a_grpc.errors import ERROR_TABLE, OUR_ERRORS, TRANSPORT_ERRORS, ErrorSpec, FieldViolation
from a2a_grpc.status import from_rpc_error
from a2a_grpc.v03.errors import (
    V03_JSONRPC_CODES,
    from_grpc_error_v03,
    from_jsonrpc_error_v03,
    from_rest_error_v03,
    rest_status_v03,
    to_grpc_status_v03,
    to_jsonrpc_error_v03,
    to_rest_error_v03,
)

ROWS = ERROR_TABLE + OUR_ERRORS
ALL = ROWS + TRANSPORT_ERRORS


def sample(row: ErrorSpec) -> errors.A2AError:
    return row.exc_type(
        f"{row.name} happened",
        metadata={"task_id": "t-1"},
        field_violations=[FieldViolation("message.parts", "is required")],
    )


class FakeRpcError(grpc.RpcError):
    """A failed call as grpc.aio hands it to a client: code, details, trailing metadata."""

    def __init__(self, code: grpc.StatusCode, details: str, trailers: Any = ()) -> None:
        self._code, self._details, self._trailers = code, details, tuple(trailers)

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> Any:
        return self._trailers


def assert_same(decoded: errors.A2AError, original: errors.A2AError) -> None:
    assert type(decoded) is type(original)
    assert decoded.message == original.message
    if original.spec.reason:  # transport errors carry no ErrorInfo, so no metadata (as on v1.0)
        assert decoded.metadata == original.metadata
    assert decoded.field_violations == original.field_violations


# -- JSON-RPC -----------------------------------------------------------------------------------


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.name)
def test_jsonrpc_v03_codes_and_back(row: ErrorSpec) -> None:
    err = sample(row)
    obj = to_jsonrpc_error_v03(err)
    if -32007 <= row.jsonrpc_code <= -32001 or row.jsonrpc_code in (-32700, -32600, -32601, -32602, -32603):
        assert obj["code"] == row.jsonrpc_code
    else:  # v0.3 has no code for it: InternalError, the message kept
        assert obj["code"] == -32603
    assert obj["code"] in V03_JSONRPC_CODES
    assert obj["message"] == err.message
    v03.JSONRPCErrorResponse.model_validate({"jsonrpc": "2.0", "id": 1, "error": obj})
    assert_same(from_jsonrpc_error_v03(obj), err)
    assert_same(from_jsonrpc_error_v03({"jsonrpc": "2.0", "id": 1, "error": obj}), err)
    assert_same(from_jsonrpc_error(obj), err)  # our v1.0 decoder reads the v0.3 form precisely too


SDK_ERRORS = [
    (v03.JSONParseError, errors.ParseError),
    (v03.InvalidRequestError, errors.InvalidRequestError),
    (v03.MethodNotFoundError, errors.MethodNotFoundError),
    (v03.InvalidParamsError, errors.InvalidParamsError),
    (v03.InternalError, errors.InternalError),
    (v03.TaskNotFoundError, errors.TaskNotFoundError),
    (v03.TaskNotCancelableError, errors.TaskNotCancelableError),
    (v03.PushNotificationNotSupportedError, errors.PushNotificationNotSupportedError),
    (v03.UnsupportedOperationError, errors.UnsupportedOperationError),
    (v03.ContentTypeNotSupportedError, errors.ContentTypeNotSupportedError),
    (v03.InvalidAgentResponseError, errors.InvalidAgentResponseError),
    (v03.AuthenticatedExtendedCardNotConfiguredError, errors.ExtendedAgentCardNotConfiguredError),
]


@pytest.mark.parametrize(("model", "cls"), SDK_ERRORS, ids=lambda x: getattr(x, "__name__", ""))
def test_what_the_sdk_v03_models_dump_decodes_to_our_class(model: Any, cls: type[errors.A2AError]) -> None:
    dumped = model(data={"task_id": "t-9"}).model_dump(by_alias=True, exclude_none=True, mode="json")
    decoded = from_jsonrpc_error_v03(dumped)
    assert type(decoded) is cls
    assert decoded.message == dumped["message"]
    assert decoded.metadata == {"task_id": "t-9"}  # a flat data object is read as metadata


def test_an_unknown_exception_is_an_internal_error_without_its_text_on_every_v03_form() -> None:
    boom = ValueError("secret path /etc/x")
    assert to_jsonrpc_error_v03(boom)["message"] == errors.INTERNAL_MESSAGE
    assert to_grpc_status_v03(boom).details == f"InternalError: {errors.INTERNAL_MESSAGE}"
    status, body = to_rest_error_v03(boom)
    assert (status, body["type"], body["message"]) == (500, "InternalError", errors.INTERNAL_MESSAGE)


# -- gRPC ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("row", ALL, ids=lambda r: r.name)
def test_grpc_v03_status_names_the_error_and_carries_our_error_info(row: ErrorSpec) -> None:
    err = sample(row)
    status = to_grpc_status_v03(err)
    assert status.code == errors.wire_grpc_code(err)
    assert status.details == f"{row.name}: {err.message}"
    call = FakeRpcError(status.code, status.details, status.trailing_metadata)
    assert_same(from_grpc_error_v03(call), err)
    if row.reason:  # our v1.0 gRPC decoder finds the precise error in the trailer too
        assert type(from_rpc_error(call)) is row.exc_type


@pytest.mark.parametrize("row", ERROR_TABLE, ids=lambda r: r.name)
def test_an_sdk_v03_grpc_error_decodes_by_its_name_prefix(row: ErrorSpec) -> None:
    # SDK 0.3 answers UNIMPLEMENTED for some, SDK 1.x the v1.0 code: the name decides, no trailer.
    for code in (row.grpc_code, grpc.StatusCode.UNIMPLEMENTED):
        decoded = from_grpc_error_v03(FakeRpcError(code, f"{row.name}: it failed"))
        assert type(decoded) is row.exc_type
        assert decoded.message == "it failed"
        assert decoded.grpc_code == code


def test_a_grpc_error_without_name_or_error_info_falls_back_to_its_code() -> None:
    assert (
        type(from_grpc_error_v03(FakeRpcError(grpc.StatusCode.NOT_FOUND, "gone"))) is errors.TaskNotFoundError
    )
    unknown = from_grpc_error_v03(FakeRpcError(grpc.StatusCode.UNKNOWN, "Unknown error type: x"))
    assert type(unknown) is errors.TransportError
    legacy = FakeRpcError(grpc.StatusCode.UNKNOWN, "AuthenticatedExtendedCardNotConfiguredError: none")
    assert type(from_grpc_error_v03(legacy)) is errors.ExtendedAgentCardNotConfiguredError


def test_a_malformed_trailer_does_not_hide_the_grpc_error() -> None:
    call = FakeRpcError(
        grpc.StatusCode.NOT_FOUND, "TaskNotFoundError: x", [("grpc-status-details-bin", b"\xff\x00junk")]
    )
    assert type(from_grpc_error_v03(call)) is errors.TaskNotFoundError


# -- HTTP+JSON ----------------------------------------------------------------------------------

V03_HTTP = {
    "InvalidParamsError": 422,
    "TaskNotCancelableError": 409,
    "PushNotificationNotSupportedError": 501,
    "UnsupportedOperationError": 501,
    "ContentTypeNotSupportedError": 415,
    "InvalidAgentResponseError": 502,
    "ExtendedAgentCardNotConfiguredError": 404,
    "TaskNotFoundError": 404,
    "MethodNotFoundError": 404,
    "InternalError": 500,
    "JSONParseError": 400,
    "InvalidRequestError": 400,
}


@pytest.mark.parametrize("row", ALL, ids=lambda r: r.name)
def test_rest_v03_status_and_body_every_client_generation_reads(row: ErrorSpec) -> None:
    err = sample(row)
    status, body = to_rest_error_v03(err)
    assert status == V03_HTTP.get(row.name, row.http_status) == rest_status_v03(err)
    assert body["message"] == err.message
    assert body["type"] == row.name
    assert body["error"]["code"] == status
    assert body["error"]["status"] == errors.wire_grpc_code(err).name
    assert_same(from_rest_error_v03(status, body), err)  # ours
    if row.reason:  # a v1.0 client reads the "error" object
        assert_same(from_rest_error(status, body), err)


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (404, errors.TaskNotFoundError),
        (409, errors.TaskNotCancelableError),
        (415, errors.ContentTypeNotSupportedError),
        (422, errors.InvalidParamsError),
        (400, errors.InvalidRequestError),
        (500, errors.InternalError),
        (501, errors.UnsupportedOperationError),
        (502, errors.InvalidAgentResponseError),
        (429, errors.RateLimitedError),
        (503, errors.UnavailableError),
    ],
)
def test_an_sdk_v03_rest_error_decodes_by_its_status(status: int, cls: type[errors.A2AError]) -> None:
    decoded = from_rest_error_v03(status, {"message": "it failed"})
    assert type(decoded) is cls
    assert decoded.message == "it failed"


def test_rest_forms_of_other_peers() -> None:
    # SDK 1.x's compat client form: the type name decides, whatever the status.
    assert (
        type(from_rest_error_v03(400, {"type": "TaskNotFoundError", "message": "x"}))
        is errors.TaskNotFoundError
    )
    # a v1.0 problem-details body
    problem = {"type": "https://a2a-protocol.org/errors/task-not-found", "detail": "gone", "status": 404}
    decoded = from_rest_error_v03(404, problem)
    assert (type(decoded), decoded.message) == (errors.TaskNotFoundError, "gone")
    # an unknown route: 404 without an A2A body
    assert type(from_rest_error_v03(404, {"detail": "Not Found"})) is errors.MethodNotFoundError
    # a proxy's page, a teapot
    page = from_rest_error_v03(502, "<html>bad gateway</html>")
    assert type(page) is errors.InvalidAgentResponseError
    odd = from_rest_error_v03(418, None)
    assert type(odd) is errors.TransportError
    assert odd.message == "HTTP 418 with no A2A error body"


@pytest.mark.parametrize(
    "details",
    [
        "junk",
        [1, "two", None],
        [{"@type": "type.googleapis.com/nowhere.Unknown", "x": 1}],
        [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "metadata": {"k": [1, 2]}}],
        [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "NO_SUCH_REASON",
                "domain": "a2a-protocol.org",
            }
        ],
        {"details": {"deep": [[[[[]]]]]}},
    ],
)
def test_hostile_details_never_hide_the_error(details: object) -> None:
    rpc = from_jsonrpc_error_v03({"code": -32001, "message": "gone", "data": details})
    assert type(rpc) is errors.TaskNotFoundError
    rest = from_rest_error_v03(409, {"message": "busy", "error": {"status": 42, "details": details}})
    assert type(rest) is errors.TaskNotCancelableError


def test_hostile_jsonrpc_error_objects_decode_to_an_internal_error() -> None:
    for obj in ({}, {"code": "x"}, {"code": 12345, "message": 5}, {"error": {"code": None}}):
        assert type(from_jsonrpc_error_v03(obj)) is errors.InternalError
