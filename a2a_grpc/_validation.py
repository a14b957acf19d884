"""Request validation: every refusal names the field, as google.rpc.BadRequest wants."""

from __future__ import annotations

from google.protobuf.message import Message

from a2a_grpc import errors, types
from a2a_grpc.errors import FieldViolation
from a2a_grpc.security.webhooks import WebhookPolicy

__all__ = [
    "check_enum",
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
