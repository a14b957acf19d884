"""The session binding's wire facts: its frames, its URI, and which frame field carries which
A2A operation and response, all read from the descriptors of ``a2a_grpc.session.v1`` and
``lf.a2a.v1`` (nothing written out twice)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google.protobuf.message import Message
from google.rpc import status_pb2  # type: ignore[import-untyped]  # .pyi but no py.typed

from a2a_grpc._gen.a2a_grpc.session.v1 import session_pb2 as pb
from a2a_grpc._gen.a2a_grpc.session.v1.session_pb2 import (
    Call,
    CallEnd,
    CallEvent,
    CancelCall,
    Chunk,
    ClientBatch,
    ClientFrame,
    Credit,
    Goodbye,
    Heartbeat,
    Hello,
    Refresh,
    Resume,
    ServerFrame,
    Skill,
    Welcome,
    Window,
)
from a2a_grpc.service import METHODS, Method

__all__ = [
    "BATCH_OVERHEAD",
    "BINDING_URI",
    "CALLS",
    "CHUNK_OVERHEAD",
    "CONNECT",
    "MAX_BATCH",
    "MAX_BATCH_BYTES",
    "PAYLOADS",
    "SESSION_SERVICE",
    "Call",
    "CallEnd",
    "CallEvent",
    "CancelCall",
    "Chunk",
    "ClientBatch",
    "ClientFrame",
    "Credit",
    "Goodbye",
    "Heartbeat",
    "Hello",
    "Refresh",
    "Resume",
    "ServerFrame",
    "Skill",
    "Welcome",
    "Window",
    "batch_bytes",
    "batched",
    "call_field",
    "end_of",
    "event_bytes",
    "event_of",
    "pieces",
    "serialize",
    "status_in",
]

BINDING_URI = "urn:a2a-grpc:binding:session:v1"
"""The ``protocol_binding`` of the session binding's AgentInterface (A2A 5.8, 12.7); a breaking
change of the binding gets a new URI."""

SESSION_SERVICE = pb.DESCRIPTOR.services_by_name["SessionService"]
"""The ``a2a_grpc.session.v1.SessionService`` descriptor."""
CONNECT = f"/{SESSION_SERVICE.full_name}/Connect"
"""The method path of the one RPC."""


def _calls() -> dict[str, Method]:
    by_operation = {method.operation: method for method in METHODS.values()}
    fields = Call.DESCRIPTOR.oneofs_by_name["request"].fields
    calls = {field.name: by_operation[field.name] for field in fields}
    if set(calls.values()) != set(METHODS.values()):
        raise RuntimeError("session.proto's Call.request must name every A2A operation once")
    return calls


CALLS: Mapping[str, Method] = _calls()
"""The A2A method each ``Call.request`` field starts, by field name (``send_message`` ...)."""
_FIELD_OF = {method.name: name for name, method in CALLS.items()}


def call_field(method: str) -> str:
    """The ``Call.request`` field of A2A method ``method`` (``SendMessage`` -> ``send_message``)."""
    return _FIELD_OF[method]


def _payloads() -> dict[str, str]:
    fields = CallEvent.DESCRIPTOR.oneofs_by_name["payload"].fields
    payloads = {field.message_type.full_name: field.name for field in fields if field.message_type}
    missing = {m.response.DESCRIPTOR.full_name for m in METHODS.values()} - set(payloads)
    if missing:
        raise RuntimeError(f"session.proto's CallEvent.payload lacks {sorted(missing)}")
    return payloads


PAYLOADS: Mapping[str, str] = _payloads()
"""The ``CallEvent.payload`` field that carries a response or event, by its message's full name."""


CHUNK_OVERHEAD = 64
"""Bytes a Chunk frame adds around its data (tags, lengths, the call id, ``last``): a chunk's data
is the frame limit less this, so that every chunk frame fits the limit."""


def pieces(data: bytes, limit: int) -> list[bytes]:
    """``data`` cut into the data of the chunks of a frame, for a session whose limit is ``limit``."""
    size = max(limit - CHUNK_OVERHEAD, 1)
    view = memoryview(data)
    return [bytes(view[at : at + size]) for at in range(0, len(data), size)]


def end_of(call_id: int, status: Any) -> ServerFrame:
    """The CallEnd frame of a call with ``status`` (a ``google.rpc.Status``). Copied as bytes: the
    frame's Status is our descriptor pool's class, not ``google.rpc.status_pb2``'s."""
    end = CallEnd(call_id=call_id)
    end.status.MergeFromString(status.SerializeToString())
    return ServerFrame(end=end)


def status_in(end: CallEnd) -> Any:
    """The ``google.rpc.status_pb2.Status`` a CallEnd carries (see :func:`end_of`)."""
    return status_pb2.Status.FromString(end.status.SerializeToString())


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _payload_tags() -> dict[str, bytes]:
    fields = CallEvent.DESCRIPTOR.oneofs_by_name["payload"].fields
    return {f.message_type.full_name: _varint(f.number << 3 | 2) for f in fields if f.message_type}


_PAYLOAD_TAGS = _payload_tags()
_EVENT_TAG = _varint(ServerFrame.DESCRIPTOR.fields_by_name["event"].number << 3 | 2)
_CALL_ID_TAG = _varint(CallEvent.DESCRIPTOR.fields_by_name["call_id"].number << 3)
_SEQ_TAG = _varint(CallEvent.DESCRIPTOR.fields_by_name["seq"].number << 3)
_LAST_TRUE = _varint(CallEvent.DESCRIPTOR.fields_by_name["last"].number << 3) + b"\x01"


def event_bytes(call_id: int, seq: int, message: Message, *, last: bool = False) -> bytes:
    """The serialized ServerFrame carrying ``message`` as event ``seq`` of a call: the same bytes
    as ``event_of(...).SerializeToString()``, written around ``message``'s own serialization
    instead of copying ``message`` twice into new messages (a frame per response on the hot path;
    a test checks the two agree)."""
    body = message.SerializeToString()
    event = _CALL_ID_TAG + _varint(call_id)
    if seq:
        event += _SEQ_TAG + _varint(seq)
    if last:
        event += _LAST_TRUE
    event += _PAYLOAD_TAGS[message.DESCRIPTOR.full_name] + _varint(len(body)) + body
    return _EVENT_TAG + _varint(len(event)) + event


MAX_BATCH = 256
"""Frames sent in one batch at most."""
MAX_BATCH_BYTES = 256 * 1024
"""Bytes of frames joined into one batch at most (and never beyond the frame limit): enough to
make a write's own cost small, without copying megabytes of large frames into a batch."""
BATCH_OVERHEAD = 6
"""Bytes a batch adds around each frame it holds, and around itself, at most (a tag, a length up to
2^32): a writer keeps ``frames + overhead`` within the frame limit."""


def _batch_tags() -> tuple[bytes, bytes]:
    tags = {
        (
            _varint(frame.DESCRIPTOR.fields_by_name["batch"].number << 3 | 2),
            _varint(batch.DESCRIPTOR.fields_by_name["frames"].number << 3 | 2),
        )
        for frame, batch in ((ServerFrame, pb.Batch), (ClientFrame, ClientBatch))
    }
    if len(tags) != 1:
        raise RuntimeError("session.proto's ServerFrame.batch and ClientFrame.batch must be numbered alike")
    return tags.pop()


_BATCH_TAG, _BATCH_ITEM_TAG = _batch_tags()


_RECEIVED_TAG = _varint(pb.Batch.DESCRIPTOR.fields_by_name["received"].number << 3)
if _varint(ClientBatch.DESCRIPTOR.fields_by_name["received"].number << 3) != _RECEIVED_TAG:
    raise RuntimeError("session.proto's Batch.received and ClientBatch.received must be numbered alike")


def batch_bytes(frames: list[bytes], received: int = 0) -> bytes:
    """The serialized frame holding the serialized ``frames`` as one batch, in order, with the
    sender's acknowledgement ``received``: a ServerFrame's Batch of ServerFrames, or a
    ClientFrame's ClientBatch of ClientFrames (the two are numbered alike, so their bytes are
    written the same way)."""
    body = b"".join(_BATCH_ITEM_TAG + _varint(len(frame)) + frame for frame in frames)
    if received:
        body += _RECEIVED_TAG + _varint(received)
    return _BATCH_TAG + _varint(len(body)) + body


def batched(frames: list[bytes], limit: int) -> list[bytes]:
    """``frames`` (serialized) as writes: batches of up to ``limit`` bytes and MAX_BATCH frames,
    in order (a frame larger than ``limit``, alone)."""
    writes: list[bytes] = []
    ready: list[bytes] = []
    size = BATCH_OVERHEAD
    for data in frames:
        if ready and (size + len(data) + BATCH_OVERHEAD > limit or len(ready) >= MAX_BATCH):
            writes.append(ready[0] if len(ready) == 1 else batch_bytes(ready))
            ready, size = [], BATCH_OVERHEAD
        ready.append(data)
        size += len(data) + BATCH_OVERHEAD
    if ready:
        writes.append(ready[0] if len(ready) == 1 else batch_bytes(ready))
    return writes


def serialize(frame: Message | bytes) -> bytes:
    """What a Connect stream writes, either way: a frame, or one already serialized
    (:func:`event_bytes`, :func:`batch_bytes`)."""
    return frame if isinstance(frame, bytes) else frame.SerializeToString()


def event_of(call_id: int, seq: int, message: Message, *, last: bool = False) -> ServerFrame:
    """The frame carrying ``message`` (a response or a stream event) as event ``seq`` of a call;
    ``last``: the call ends with it, OK."""
    event = CallEvent(call_id=call_id, seq=seq, last=last)
    getattr(event, PAYLOADS[message.DESCRIPTOR.full_name]).CopyFrom(message)
    return ServerFrame(event=event)
