"""Request validation: every refusal names the field, as google.rpc.BadRequest wants.

**Identifiers.** Task, context, message and push config ids and tenants are opaque strings to
the spec, but they travel into URL paths (the JSON bindings, the reverse bridge), store keys and
log lines. Every operation checks the identifiers of its request at its entry
(:func:`check_identifiers`, from :func:`a2a_grpc._handler.checked`), refusing with
InvalidParamsError naming the field:

* ``.`` and ``..``: URL dot segments, which HTTP clients remove from a path, so ``GetTask(id="..")``
  would reach another resource than a task;
* control characters (C0, DEL, C1), the line and paragraph separators U+2028/U+2029, and the
  bidirectional embedding, override and isolate controls: they forge or reorder log lines;
* more than :data:`MAX_ID_CHARS` characters.

Everything else is allowed (unicode letters, ``a.b``, ``..a``, ``/``, ``%``...); an empty value is
refused only where the operation requires the field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from google.protobuf.message import Message

from a2a_grpc import errors, types
from a2a_grpc.errors import FieldViolation
from a2a_grpc.security.webhooks import WebhookPolicy

__all__ = [
    "DOT_SEGMENTS",
    "IDENTIFIER_FIELDS",
    "MAX_ID_CHARS",
    "check_enum",
    "check_identifier",
    "check_identifiers",
    "invalid",
    "require",
    "validate_message",
    "validate_send",
    "validate_webhook_url",
    "webhook_policy",
]

_DEFAULT_WEBHOOK_POLICY = WebhookPolicy()

_ROLES = frozenset(types.Role.values())
_STATES = frozenset(types.TaskState.values())


def invalid(field: str, description: str) -> errors.InvalidParamsError:
    return errors.InvalidParamsError(
        f"invalid {field}: {description}", field_violations=[FieldViolation(field, description)]
    )


def require(value: str, field: str) -> str:
    if not value:
        raise invalid(field, "is required")
    return value


def check_enum(value: int, field: str, allowed: frozenset[int], enum_name: str) -> None:
    # proto3 enums are open: an unknown number parses fine and must be refused here.
    if value not in allowed:
        raise invalid(field, f"{value} is not a {enum_name} value")


def validate_message(message: types.Message, field: str = "message") -> None:
    require(message.message_id, f"{field}.message_id")
    check_enum(message.role, f"{field}.role", _ROLES, "Role")
    if message.role == types.ROLE_UNSPECIFIED:
        raise invalid(f"{field}.role", "must be ROLE_USER or ROLE_AGENT")
    if not message.parts:
        raise invalid(f"{field}.parts", "at least one part is required")
    for i, part in enumerate(message.parts):
        if part.WhichOneof("content") is None:
            raise invalid(f"{field}.parts[{i}]", "a part needs text, raw, url or data")


def webhook_policy(notifier: object) -> WebhookPolicy:
    """The policy of the notifier that will deliver (``PushNotifier.policy``), else the default one."""
    policy = getattr(notifier, "policy", None)
    return policy if isinstance(policy, WebhookPolicy) else _DEFAULT_WEBHOOK_POLICY


def validate_webhook_url(url: str, field: str, policy: WebhookPolicy | None = None) -> None:
    """Refuse a webhook URL the policy forbids (spec §13.2: SSRF); names are judged at delivery."""
    require(url, field)
    (policy or _DEFAULT_WEBHOOK_POLICY).check(url, field)


def validate_send(request: types.SendMessageRequest, policy: WebhookPolicy | None = None) -> None:
    if not request.HasField("message"):
        raise invalid("message", "is required")
    validate_message(request.message)
    config = request.configuration
    if config.HasField("history_length") and config.history_length < 0:
        raise invalid("configuration.history_length", "must not be negative")
    if config.HasField("task_push_notification_config"):
        field = "configuration.task_push_notification_config.url"
        validate_webhook_url(config.task_push_notification_config.url, field, policy)


def validate_state(value: int, field: str) -> None:
    check_enum(value, field, _STATES, "TaskState")


def has(message: Message, field: str) -> bool:
    return message.HasField(field)


# -- identifiers -------------------------------------------------------------------------------------

MAX_ID_CHARS = 256
"""The longest id or tenant accepted, in characters: far above a UUID (36) or any tenant name, and
small enough that an id never dominates a log line, a store key or an error's metadata."""

DOT_SEGMENTS = frozenset({".", ".."})
"""Values an HTTP client removes from a URL path (RFC 3986 section 5.2.4) instead of sending."""

# C0, DEL, C1; U+2028/U+2029 (line breaks to many log viewers); bidi embeddings, overrides and
# isolates (they reorder what a log line shows).
_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")

_PUSH = ("tenant", "task_id", "id")
IDENTIFIER_FIELDS: Mapping[type[Message], tuple[str, ...]] = {
    types.SendMessageRequest: (
        "tenant",
        "message.message_id",
        "message.context_id",
        "message.task_id",
        "message.reference_task_ids",
        *(f"configuration.task_push_notification_config.{name}" for name in _PUSH),
    ),
    types.GetTaskRequest: ("tenant", "id"),
    types.ListTasksRequest: ("tenant", "context_id"),
    types.CancelTaskRequest: ("tenant", "id"),
    types.SubscribeToTaskRequest: ("tenant", "id"),
    types.TaskPushNotificationConfig: _PUSH,
    types.GetTaskPushNotificationConfigRequest: _PUSH,
    types.ListTaskPushNotificationConfigsRequest: ("tenant", "task_id"),
    types.DeleteTaskPushNotificationConfigRequest: _PUSH,
    types.GetExtendedAgentCardRequest: ("tenant",),
}
"""The id and tenant fields of each operation's request, as dotted field paths (a repeated field
checks each of its values)."""


def check_identifier(value: str, field: str) -> None:
    """InvalidParamsError naming ``field`` if ``value`` cannot be an id or tenant (module doc)."""
    if not value:
        return
    # Printable ASCII (every id we and the SDKs make) needs no character scan: one C-speed test.
    if len(value) <= MAX_ID_CHARS and value.isascii() and value.isprintable() and value not in DOT_SEGMENTS:
        return
    if len(value) > MAX_ID_CHARS:
        # Not echoed: the point is that it is too long to quote.
        raise invalid(field, f"is {len(value)} characters long; at most {MAX_ID_CHARS} are allowed")
    if value in DOT_SEGMENTS:
        raise invalid(field, f"{errors.echo(value)} is a URL dot segment, not an identifier")
    bad = _FORBIDDEN.search(value)
    if bad is not None:
        # Named by code point and position only: the value itself is what could forge a log line.
        raise invalid(
            field,
            f"holds U+{ord(bad.group()):04X} at position {bad.start()}: control, line separator and "
            "bidirectional control characters are not allowed",
        )


_Plan = tuple[tuple[tuple[str, ...], tuple[tuple[str, str], ...]], ...]


def _plan(paths: tuple[str, ...]) -> _Plan:
    """The paths of one request type grouped by their parent messages: (parents, ((field, path),
    ...)), so that each parent is tested and read once per call."""
    groups: dict[tuple[str, ...], list[tuple[str, str]]] = {}
    for path in paths:
        *parents, name = path.split(".")
        groups.setdefault(tuple(parents), []).append((name, path))
    return tuple((parents, tuple(fields)) for parents, fields in groups.items())


_PLANS = {kind: _plan(paths) for kind, paths in IDENTIFIER_FIELDS.items()}
"""IDENTIFIER_FIELDS prepared once per request type (:func:`_plan`)."""


def check_identifiers(request: Message) -> None:
    """Check every identifier field of ``request`` (:data:`IDENTIFIER_FIELDS`); other types pass.

    This runs on every call, so it is written for the common case (a few short printable-ASCII
    ids): the paths are prepared once (:data:`_PLANS`), each parent message is tested and read
    once and skipped when unset (its fields are all empty; reading it would build it), and a value
    that passes the one C-speed test never costs a function call. (SendMessage: 5.4 µs -> 1.5 µs.)
    """
    for parents, fields in _PLANS.get(type(request), ()):
        holder = request
        for parent in parents:
            if not holder.HasField(parent):
                break
            holder = getattr(holder, parent)
        else:
            for name, path in fields:
                value = getattr(holder, name)
                if not value:
                    continue
                if type(value) is not str:  # a repeated field
                    for i, item in enumerate(value):
                        check_identifier(item, f"{path}[{i}]")
                elif not (
                    len(value) <= MAX_ID_CHARS
                    and value.isascii()
                    and value.isprintable()
                    and value not in DOT_SEGMENTS
                ):
                    check_identifier(value, path)
