"""Errors raised by the task layer.

The request errors carry ``field``: the request field (in proto naming) the error is about, so
a binding can report it as a field violation (gRPC ``BadRequest``, HTTP ``errors[].field``);
the server maps them onto A2A errors. :class:`StoreError` is about opening a store, before any
request. All are plain ``ValueError`` subclasses on purpose: this package must not depend on
the transport's error module, and ``open_store`` callers catch one type for a bad URL or file.
"""

from __future__ import annotations

__all__ = ["InvalidListRequestError", "InvalidPageTokenError", "InvalidTransitionError", "StoreError"]


class InvalidTransitionError(ValueError):
    """A task status change the A2A lifecycle does not allow (e.g. leaving a terminal state)."""

    def __init__(self, message: str, *, old_state: int, new_state: int, field: str = "status.state") -> None:
        super().__init__(message)
        self.message = message
        self.old_state = old_state
        self.new_state = new_state
        self.field = field


class InvalidListRequestError(ValueError):
    """A list parameter out of range (``page_size``, ``history_length``, ``status``, ...)."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidPageTokenError(InvalidListRequestError):
    """A ``page_token`` that is malformed, tampered with, or from a different query."""

    def __init__(self, message: str, *, field: str = "page_token") -> None:
        super().__init__(message, field=field)


class StoreError(ValueError):
    """A task store that cannot be used: its file is damaged, locked, unwritable or not a file.

    The message is one line that names the file, the problem and what to do about it;
    ``path`` is the file ("" when the store URL itself is wrong).
    """

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
