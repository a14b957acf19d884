"""A push delivery's body: an update in ProtoJSON, encoded so that a big one never stalls the loop.

``MessageToDict`` then ``json.dumps`` of an update carrying a large artifact makes a few calls into
C that each hold the interpreter lock for as long as the whole value takes (base64 of the bytes,
escaping of the string, the final encode): a thread does not help against those, since the event
loop cannot run while they hold the lock. So an update that carries content is encoded on a
worker thread, in steps:

* its message is copied without its long ``bytes`` and ``string`` values (each replaced by a
  random marker), and that skeleton is encoded with the pure-Python JSON encoder (which lets the
  loop in between its steps);
* each long value is then encoded in slices (base64 in multiples of 3 bytes, JSON escaping of a
  slice of characters) and spliced where its marker was.

The body is a list of chunks whose concatenation is exactly what ``json.dumps(MessageToDict(event))``
would give; it is sent with a ``Content-Length``, chunk by chunk, and never joined. What stays
unbounded is reading a long value out of the message: protobuf copies it in one call (about a
memory copy's time, milliseconds for tens of MiB).
"""

from __future__ import annotations

import binascii
import json
import secrets
from collections.abc import Sequence
from typing import Final

from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from a2a_grpc import types

__all__ = ["Body", "carries_content", "encode_in_steps", "encode_inline"]

Body = Sequence[bytes]
"""A request body as chunks, sent one after another."""

LONG_VALUE: Final = 64 * 1024
"""A bytes or string value longer than this (bytes, or characters) is encoded in slices."""
_BYTES_STEP: Final = 3 * 128 * 1024  # a multiple of 3: the base64 of each slice needs no padding
_CHARS_STEP: Final = 128 * 1024
_WELL_KNOWN: Final = "google.protobuf."
_SEPARATORS: Final = (",", ":")


def carries_content(event: types.StreamResponse) -> bool:
    """Whether ``event`` may hold a large value: anything but a status update without a message.

    Cheap on purpose (no value is read: reading one copies it): what it says yes to is encoded
    on a worker thread.
    """
    if event.WhichOneof("payload") != "status_update":
        return True
    return event.status_update.status.HasField("message") or event.status_update.HasField("metadata")


def encode_inline(event: types.StreamResponse) -> Body:
    """The body of a small update, at once (on the event loop)."""
    text = json.dumps(json_format.MessageToDict(event), ensure_ascii=False, separators=_SEPARATORS)
    return [text.encode()]


def encode_in_steps(event: types.StreamResponse) -> Body:
    """The body of any update, in steps that each hold the interpreter lock briefly (for a thread)."""
    nonce = secrets.token_hex(12)
    longs: list[bytes | str] = []
    skeleton = type(event)()
    _strip(event, skeleton, longs, nonce)
    encoder = json.JSONEncoder(ensure_ascii=False, separators=_SEPARATORS)
    # iterencode without _one_shot runs the pure-Python encoder: it yields, so other threads run.
    text = "".join(encoder.iterencode(json_format.MessageToDict(skeleton)))
    if not longs:
        return [text.encode()]
    # Where each marker landed (looked up, not assumed: the order is the JSON printer's).
    markers = [(_marker_text(nonce, i, isinstance(v, bytes)), v) for i, v in enumerate(longs)]
    places = sorted(((text.index(m), m, v) for m, v in markers), key=lambda place: place[0])
    chunks: list[bytes] = []
    start = 0
    for at, marker, value in places:
        chunks.append(text[start:at].encode())
        if isinstance(value, bytes):
            view = memoryview(value)
            for offset in range(0, len(view), _BYTES_STEP):
                chunks.append(binascii.b2a_base64(view[offset : offset + _BYTES_STEP], newline=False))
        else:
            for offset in range(0, len(value), _CHARS_STEP):
                piece = json.dumps(value[offset : offset + _CHARS_STEP], ensure_ascii=False)
                chunks.append(piece[1:-1].encode())
        start = at + len(marker)
    chunks.append(text[start:].encode())
    return chunks


def _marker_bytes(nonce: str, index: int) -> bytes:
    # 36 bytes (a multiple of 3): its base64 is a fixed 48 characters, no padding.
    return b"\x00a2a" + bytes.fromhex(nonce) + index.to_bytes(20, "big")


def _marker_text(nonce: str, index: int, is_bytes: bool) -> str:
    """What a long value's marker looks like in the skeleton's JSON."""
    if is_bytes:
        return binascii.b2a_base64(_marker_bytes(nonce, index), newline=False).decode()
    return f"\ue000a2a-grpc-long-{nonce}-{index}\ue000"  # private-use characters: JSON leaves them be


def _strip(source: Message, target: Message, longs: list[bytes | str], nonce: str) -> None:
    """Copy ``source`` into ``target`` with each long bytes or string value replaced by a marker,
    the values appended to ``longs`` in the order ``MessageToDict`` writes them (field order)."""
    for field, value in source.ListFields():
        name = field.name
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            kind = field.message_type
            assert kind is not None  # a message field has a message type
            if kind.GetOptions().map_entry:
                getattr(target, name).MergeFrom(value)
            elif field.is_repeated:
                out = getattr(target, name)
                for item in value:
                    if kind.full_name.startswith(_WELL_KNOWN):
                        out.add().CopyFrom(item)
                    else:
                        _strip(item, out.add(), longs, nonce)
            elif kind.full_name.startswith(_WELL_KNOWN):
                # Struct, Value, Timestamp...: their JSON has its own shapes; copied as they are.
                getattr(target, name).CopyFrom(value)
            else:
                inner = getattr(target, name)
                inner.SetInParent()  # an empty message that is set stays set
                _strip(value, inner, longs, nonce)
        elif field.is_repeated:
            getattr(target, name).extend(value)
        elif isinstance(value, bytes | str) and len(value) > LONG_VALUE:
            index = len(longs)
            longs.append(value)
            if isinstance(value, bytes):
                setattr(target, name, _marker_bytes(nonce, index))
            else:
                setattr(target, name, _marker_text(nonce, index, False))
        else:
            setattr(target, name, value)
