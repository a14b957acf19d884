"""What one request may hold: parts per message, nesting of JSON bodies and of free-form values.

Every check here refuses with :class:`a2a_grpc.errors.LimitExceededError` naming the field of
:class:`a2a_grpc.security.limits.Limits` that was passed (``limit``) and its value, and costs
little for what it protects against: a count is read, never computed by walking, and a walk of
nested values stops at the first level too deep.

* :func:`check_request`: a decoded request (every binding: gRPC, the session binding, the bridge's
  in-process calls), run at each operation's entry (:func:`a2a_grpc._handler.checked`). Only
  ``SendMessageRequest`` carries parts and free-form values (metadata, data parts), so every other
  request passes at the cost of one type test.
* :func:`check_json_body` / :func:`check_json_request`: the parsed JSON of the two JSON bindings,
  BEFORE the ProtoJSON -> proto transcoding, which costs two orders of magnitude more per value
  than these walks (a 1.2-million-part body is refused by counting one list).

Depths count objects and arrays alike: ``{"a": 1}`` and ``[1]`` nest one level, ``{"a": [1]}`` two.
A JSON body's depth is the body's own (a JSON-RPC envelope is one level of it); a free-form
value's depth is its own, wherever it sits.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.message import Message

from a2a_grpc import errors, types
from a2a_grpc.security.limits import Limits

__all__ = ["check_json", "check_json_body", "check_json_request", "check_request", "json_deeper_than"]


def _exceeded(limit: str, value: int, what: str) -> errors.LimitExceededError:
    return errors.LimitExceededError(f"{what} (limit {limit} = {value})", limit=limit, value=value)


# -- JSON (the bridge, before transcoding) --------------------------------------------------------


def json_deeper_than(value: object, levels: int) -> bool:
    """Whether ``value`` (parsed JSON) nests objects and arrays more than ``levels`` deep.

    Stops at the first container too deep; scalars cost one type test each (``type() is``: JSON
    from the parser holds exact dicts and lists). A loop, not recursion: the parser reads 1,024
    levels, past Python's recursion limit."""
    kind = type(value)
    if kind is not dict and kind is not list:
        return False
    if levels <= 0:
        return True
    stack: list[tuple[Any, int]] = [(value, levels)]
    while stack:
        container, room = stack.pop()
        below = room - 1
        for item in container.values() if type(container) is dict else container:
            sub = type(item)
            if sub is dict or sub is list:
                if below <= 0:
                    return True
                stack.append((item, below))
    return False


def check_json_body(body: object, limits: Limits) -> None:
    """LimitExceededError(max_json_depth) if the parsed body nests deeper than the limit."""
    if json_deeper_than(body, limits.max_json_depth):
        raise _exceeded(
            "max_json_depth",
            limits.max_json_depth,
            f"the request body nests objects and arrays more than {limits.max_json_depth} levels deep",
        )


def _json_free_form(value: object, where: str, limits: Limits) -> None:
    if json_deeper_than(value, limits.max_struct_depth):
        raise _exceeded(
            "max_struct_depth",
            limits.max_struct_depth,
            f"{where} nests more than {limits.max_struct_depth} levels deep",
        )


def check_json_request(params: object, request_type: type[Message], limits: Limits) -> None:
    """The limits of :func:`check_request`, read on the parsed JSON of a request (JSON-RPC
    ``params``, an HTTP+JSON body) before it is transcoded. Members of the wrong type are left to
    the transcoder, which names them."""
    if request_type is not types.SendMessageRequest or type(params) is not dict:
        return
    message = params.get("message")
    if type(message) is dict:
        parts = message.get("parts")
        if type(parts) is list:
            _check_parts(len(parts), limits)
            for i, part in enumerate(parts):
                if type(part) is dict:
                    for name in ("data", "metadata"):
                        if name in part:
                            _json_free_form(part[name], f"message.parts[{i}].{name}", limits)
        if "metadata" in message:
            _json_free_form(message["metadata"], "message.metadata", limits)
    if "metadata" in params:
        _json_free_form(params["metadata"], "metadata", limits)


def check_json(body: object, params: object, request_type: type[Message], limits: Limits) -> None:
    """Both checks of a JSON request: :func:`check_json_request` of its ``params`` (the body of an
    HTTP+JSON request, the ``params`` of a JSON-RPC one), then :func:`check_json_body`."""
    check_json_request(params, request_type, limits)
    check_json_body(body, limits)


# -- decoded requests (every binding) -------------------------------------------------------------


def _check_parts(count: int, limits: Limits) -> None:
    if count > limits.max_parts:
        raise _exceeded(
            "max_parts",
            limits.max_parts,
            f"message.parts holds {count} parts; a message may hold at most {limits.max_parts}",
        )


def _value_deeper_than(value: Any, levels: int) -> bool:
    """Whether a ``google.protobuf.Value`` nests structs and lists more than ``levels`` deep."""
    kind = value.WhichOneof("kind")
    if kind == "struct_value":
        return _items_deeper_than(value.struct_value.fields.values(), levels)
    if kind == "list_value":
        return _items_deeper_than(value.list_value.values, levels)
    return False


def _items_deeper_than(items: Any, levels: int) -> bool:
    """Whether a struct's or list's items (``Value``) nest more than ``levels - 1`` deep. Written
    for long lists of scalars (a data part of a million numbers): one ``WhichOneof`` per item and
    no call for a scalar, about 0.2 µs each."""
    if levels <= 0:
        return True
    below = levels - 1
    for item in items:
        kind = item.WhichOneof("kind")
        if kind == "struct_value":
            if _items_deeper_than(item.struct_value.fields.values(), below):
                return True
        elif kind == "list_value" and _items_deeper_than(item.list_value.values, below):
            return True
    return False


def _free_form(holder: Message, name: str, where: str, limits: Limits, value: bool = False) -> None:
    if not holder.HasField(name):
        return
    field = getattr(holder, name)
    deeper = (
        _value_deeper_than(field, limits.max_struct_depth)
        if value
        else _items_deeper_than(field.fields.values(), limits.max_struct_depth)
    )
    if deeper:
        raise _exceeded(
            "max_struct_depth",
            limits.max_struct_depth,
            f"{where} nests more than {limits.max_struct_depth} levels deep",
        )


def check_request(request: object, limits: Limits, *, nesting: bool = True) -> None:
    """LimitExceededError naming the limit if a decoded request holds more than ``limits`` allow:
    ``max_parts`` (parts of its message), ``max_struct_depth`` (its metadata, its message's, each
    part's metadata and data). ``nesting=False`` skips the walk of free-form values, for a request
    whose JSON was checked already (:func:`check_json_request`, several times faster)."""
    if type(request) is not types.SendMessageRequest:
        return
    if request.HasField("message"):
        message = request.message
        parts = message.parts
        _check_parts(len(parts), limits)
        if not nesting:
            return
        for i, part in enumerate(parts):
            _free_form(part, "data", f"message.parts[{i}].data", limits, value=True)
            _free_form(part, "metadata", f"message.parts[{i}].metadata", limits)
        _free_form(message, "metadata", "message.metadata", limits)
    _free_form(request, "metadata", "metadata", limits)
