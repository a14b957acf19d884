"""Push notification configs sealed at rest: AES-256-GCM in the SQLite task store.

A push config holds the webhook receiver's credentials (``authentication.credentials``), its
token and its URL. The SQLite store keeps each one encrypted and authenticated with AES-256-GCM
(``cryptography``'s ``AESGCM``), under a 32-byte key, taken from the first of:

1. the ``key`` given to :class:`~a2a_grpc.tasks.SqliteTaskStore`;
2. the environment variable :data:`STORE_KEY_ENV` (``A2A_GRPC_STORE_KEY``): the key in base64;
3. the key file next to the database, ``<database>.key`` (base64 too), created with mode ``0600``
   the first time a store opens without 1 or 2.

**What it protects against**: a copy of the database file alone (a backup, a file sent or shared
by mistake, a disk image, the ``-wal`` file) does not reveal the configs. **What it does not**:
anyone who can read the key too (the key file sits next to the database: a backup of the whole
folder, or a local user or process with the server's file access, reads both), nor the server's
memory. Keep the key out of the database's backups (``A2A_GRPC_STORE_KEY`` from a secret
manager, or the key file excluded) for the protection to hold. The notifier still delivers with
the clear credentials: the store decrypts on load.

**Format.** A sealed value is ``0x00``, a format version byte (1), a 4-byte key id (from a hash
of the key: it tells "another key" from "damaged"), a 12-byte random nonce, then the ciphertext
and its 16-byte tag. The associated data is that header plus the row's tenant, task id and config
id, so a value moved to another row fails to open. Values written before sealing existed are
serialised protobuf, which never starts with ``0x00`` (a field number 0 is invalid): they still
load, and the store seals them when it opens.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
from collections.abc import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from a2a_grpc.tasks._errors import StoreError
from a2a_grpc.tasks.files import PRIVATE_FILE_MODE, tighten

__all__ = [
    "KEY_BYTES",
    "KEY_FILE_SUFFIX",
    "MARK",
    "STORE_KEY_ENV",
    "Sealer",
    "given_sealer",
    "is_sealed",
    "new_store_key",
    "store_sealer",
]

STORE_KEY_ENV = "A2A_GRPC_STORE_KEY"
"""The environment variable holding the store key (base64 of :data:`KEY_BYTES` bytes)."""
KEY_FILE_SUFFIX = ".key"
"""The key file is the database's path plus this."""
KEY_BYTES = 32
"""AES-256."""

MARK = b"\x00"
"""The first byte of a sealed value; never the first byte of serialised protobuf."""
_VERSION = 1
_KEY_ID_BYTES = 4
_NONCE_BYTES = 12
_HEADER_BYTES = 2 + _KEY_ID_BYTES


def new_store_key() -> str:
    """A fresh random key, in base64: a value for ``A2A_GRPC_STORE_KEY``."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode("ascii")


def _key_id(key: bytes) -> bytes:
    return hashlib.sha256(b"a2a-grpc store key id\x00" + key).digest()[:_KEY_ID_BYTES]


def _identity(parts: tuple[str, ...]) -> bytes:
    # Length-prefixed: ("a", "bc") and ("ab", "c") are different rows.
    out = bytearray()
    for part in parts:
        data = part.encode("utf-8", "surrogatepass")
        out += len(data).to_bytes(4, "big") + data
    return bytes(out)


class Sealer:
    """Seals and opens the values of one store with one key; :attr:`source` says where the key
    came from (for error messages: never the key itself)."""

    __slots__ = ("_aead", "_id", "source")

    def __init__(self, key: bytes, source: str) -> None:
        if len(key) != KEY_BYTES:
            raise StoreError(f"the store key from {source} must be {KEY_BYTES} bytes", path="")
        self._aead = AESGCM(key)
        self._id = _key_id(key)
        self.source = source

    def __repr__(self) -> str:
        return f"Sealer(source={self.source!r})"

    def seal(self, plain: bytes, *row: str) -> bytes:
        """``plain`` encrypted and authenticated, bound to the row (tenant, task id, id) it is stored in."""
        header = MARK + bytes([_VERSION]) + self._id
        nonce = os.urandom(_NONCE_BYTES)
        return header + nonce + self._aead.encrypt(nonce, plain, header + _identity(row))

    def open(self, value: bytes, *row: str, where: str) -> bytes:
        """The plain bytes of ``value``; a value written unsealed is returned as it is.

        :class:`StoreError` naming ``where`` (the store) if it was sealed with another key, in a
        newer format, or was changed or moved to another row since.
        """
        if not is_sealed(value):
            return value
        self.check(value, where=where)
        header = value[:_HEADER_BYTES]
        nonce = value[_HEADER_BYTES : _HEADER_BYTES + _NONCE_BYTES]
        try:
            return self._aead.decrypt(nonce, value[_HEADER_BYTES + _NONCE_BYTES :], header + _identity(row))
        except InvalidTag:
            raise StoreError(
                f"{where}: a push config of task {row[-2]!r} fails its integrity check "
                "(damaged, or copied from another row)",
                path="",
            ) from None

    def check(self, value: bytes, *, where: str) -> None:
        """:class:`StoreError` if the sealed ``value`` is of a format or key this sealer cannot open
        (without decrypting it: one damaged value does not make the whole store unusable)."""
        header = value[:_HEADER_BYTES]
        if len(header) < _HEADER_BYTES or header[1] != _VERSION:
            raise StoreError(
                f"{where}: a push config is sealed in a format this a2a-grpc does not read "
                "(written by a newer version?)",
                path="",
            )
        if header[2:] != self._id:
            raise StoreError(
                f"{where}: its push configs were encrypted with another key than the one from "
                f"{self.source}; give the store the key they were written with ({STORE_KEY_ENV} or "
                "its key file)",
                path="",
            )


def is_sealed(value: bytes) -> bool:
    return value[:1] == MARK


def _decode_key(text: str, source: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), altchars=b"-_" if ("-" in text or "_" in text) else None)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        # The value is not shown: it is (meant to be) a secret.
        raise StoreError(
            f"the store key from {source} must be base64 of {KEY_BYTES} random bytes "
            f"(make one with: python -c 'from a2a_grpc.tasks.sealing import new_store_key; "
            "print(new_store_key())')",
            path="",
        )
    return key


def given_sealer(key: bytes | str | None) -> Sealer | None:
    """The sealer of the key given to the store (raw bytes, or base64 text), else of
    ``A2A_GRPC_STORE_KEY``; None when neither is there."""
    if key is not None:
        raw = key if isinstance(key, bytes) else _decode_key(key, "the key given to the store")
        return Sealer(raw, "the key given to the store")
    env = os.environ.get(STORE_KEY_ENV, "")
    if env.strip():
        return Sealer(_decode_key(env, STORE_KEY_ENV), STORE_KEY_ENV)
    return None


def store_sealer(db_path: str, key: bytes | str | None, holds_sealed: Callable[[], bool]) -> Sealer:
    """The sealer of the store at ``db_path``, its key from the first source the module doc lists.

    ``key``: raw bytes, or base64 text. ``holds_sealed``: whether the database already holds
    sealed values; a key file is created only when it does not (a lost key file is an error,
    never silently replaced by a new key the old values cannot be opened with).
    """
    given = given_sealer(key)
    if given is not None:
        return given
    if db_path == ":memory:":  # nothing outlives the process: a key of its own
        return Sealer(os.urandom(KEY_BYTES), "this process (an in-memory database)")
    key_path = db_path + KEY_FILE_SUFFIX
    source = f"the key file {key_path}"
    if not os.path.lexists(key_path):
        if holds_sealed():
            raise StoreError(
                f"task store {db_path} holds encrypted push configs but its key file {key_path} is "
                f"missing: put it back, or set {STORE_KEY_ENV} to the key they were written with",
                path=db_path,
            )
        _create_key_file(key_path)
    tighten(key_path, "task store key file")
    try:
        with open(key_path, encoding="ascii") as file:
            text = file.read()
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not base64 text"
        raise StoreError(
            f"task store {db_path}: cannot read its key file {key_path}: {why}", path=db_path
        ) from None
    return Sealer(_decode_key(text, source), source)


def _create_key_file(path: str) -> None:
    """Write a new key to ``path`` atomically: another process opening the store at the same
    moment either finds no file or the whole key, never a half-written one."""
    folder = os.path.dirname(os.path.abspath(path))
    temp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.{os.urandom(4).hex()}")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
        try:
            os.write(fd, (new_store_key() + "\n").encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        with contextlib.suppress(FileExistsError):  # another process won the race: its key it is
            os.link(temp, path)
    except OSError as exc:
        raise StoreError(
            f"cannot create the task store key file {path}: {exc.strerror or exc}; "
            f"or set {STORE_KEY_ENV} (base64 of {KEY_BYTES} random bytes)",
            path=path,
        ) from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temp)
