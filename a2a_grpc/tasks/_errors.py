"""Errors raised by the task layer; the server maps them onto A2A errors.

Each carries ``field``: the request field (in proto naming) the error is about, so a
binding can report it as a field violation (gRPC ``BadRequest``, HTTP ``errors[].field``).
These are plain ``ValueError`` subclasses on purpose: this package must not depend on
the transport's error module.
"""

from __future__ import annotations

__all__ = ["InvalidListRequestError", "InvalidPageTokenError", "InvalidTransitionError"]


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
