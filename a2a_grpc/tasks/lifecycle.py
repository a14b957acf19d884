"""The A2A v1.0 task state machine.

Sources in the specification (``a2aproject/A2A``, ``docs/specification.md``):

* §4.1.3 ``TaskState`` (rendered from ``a2a.proto``): COMPLETED, FAILED, CANCELED and
  REJECTED are *terminal*; INPUT_REQUIRED and AUTH_REQUIRED are *interrupted*; UNSPECIFIED
  is "unknown or indeterminate", never a real state. REJECTED "may be done during initial
  task creation or later once an agent has determined it can't or won't proceed".
* §3.1.1/§3.1.2: tasks in a terminal state cannot accept further messages; §3.1.5/§3.3.2:
  a terminal task is not cancelable; topics/life-of-a-task "Task Immutability": once
  terminal, a task cannot restart (follow-ups start a new task).
* §3.1.5 Cancel Task: any non-terminal task may be canceled.
* §3.4.2 "Input Required State" and §7.5 (in-task authentication): the agent pauses a
  task in an interrupted state and the client resumes it with a new message, after which
  the agent works on it again, or finishes it. A status update with the same state
  (e.g. WORKING -> WORKING carrying a progress message) is a normal status event (§4.2.1).

Allowed transitions (``old -> new``):

================  ==========================================================
old               new
================  ==========================================================
SUBMITTED         WORKING, INPUT_REQUIRED, AUTH_REQUIRED, any terminal
WORKING           WORKING, INPUT_REQUIRED, AUTH_REQUIRED, any terminal
INPUT_REQUIRED    WORKING, INPUT_REQUIRED, AUTH_REQUIRED, any terminal
AUTH_REQUIRED     WORKING, INPUT_REQUIRED, AUTH_REQUIRED, any terminal
terminal          nothing, ever
UNSPECIFIED       nothing (it is not a state a stored task can be in)
================  ==========================================================

"Any terminal" is COMPLETED, FAILED, CANCELED, REJECTED. Nothing goes back to SUBMITTED
(it is the entry state only) and nothing may become UNSPECIFIED. Interrupted -> interrupted
is allowed because the agent's answer to the client's follow-up may itself be a new request
for input or credentials, without an observable WORKING step in between.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from a2a_grpc import types
from a2a_grpc.tasks._errors import InvalidTransitionError

__all__ = [
    "ALLOWED_TRANSITIONS",
    "INITIAL_STATES",
    "INTERRUPTED_STATES",
    "SETTLED_STATES",
    "TERMINAL_STATES",
    "check_transition",
    "is_interrupted",
    "is_terminal",
    "state_name",
]

TERMINAL_STATES: frozenset[int] = frozenset(
    {
        types.TASK_STATE_COMPLETED,
        types.TASK_STATE_FAILED,
        types.TASK_STATE_CANCELED,
        types.TASK_STATE_REJECTED,
    }
)
INTERRUPTED_STATES: frozenset[int] = frozenset(
    {types.TASK_STATE_INPUT_REQUIRED, types.TASK_STATE_AUTH_REQUIRED}
)

# States a task may be created in: an agent can reject, finish or pause a task right away.
INITIAL_STATES: frozenset[int] = frozenset(
    {types.TASK_STATE_SUBMITTED, types.TASK_STATE_WORKING} | INTERRUPTED_STATES | TERMINAL_STATES
)

SETTLED_STATES: frozenset[int] = TERMINAL_STATES | INTERRUPTED_STATES
"""The states in which the agent is not working on the task: it is done, or waits for the client.
A SendMessage that does not return immediately answers once its task is settled."""

_ACTIVE_TARGETS: frozenset[int] = frozenset({types.TASK_STATE_WORKING}) | INTERRUPTED_STATES | TERMINAL_STATES

ALLOWED_TRANSITIONS: Mapping[int, frozenset[int]] = MappingProxyType(
    {
        types.TASK_STATE_UNSPECIFIED: frozenset(),
        types.TASK_STATE_SUBMITTED: _ACTIVE_TARGETS,
        types.TASK_STATE_WORKING: _ACTIVE_TARGETS,
        types.TASK_STATE_INPUT_REQUIRED: _ACTIVE_TARGETS,
        types.TASK_STATE_AUTH_REQUIRED: _ACTIVE_TARGETS,
        **{state: frozenset() for state in TERMINAL_STATES},
    }
)


def state_name(state: int) -> str:
    """The enum name of ``state`` (``TASK_STATE_WORKING``), or the number if it is unknown."""
    try:
        return types.TaskState.Name(state)
    except ValueError:
        return f"TaskState({state})"


def is_terminal(state: int) -> bool:
    """True for COMPLETED, FAILED, CANCELED and REJECTED."""
    return state in TERMINAL_STATES


def is_interrupted(state: int) -> bool:
    """True for INPUT_REQUIRED and AUTH_REQUIRED."""
    return state in INTERRUPTED_STATES


def check_transition(old: int, new: int) -> None:
    """Raise :class:`InvalidTransitionError` unless ``old -> new`` is allowed (see module doc)."""
    if new in ALLOWED_TRANSITIONS.get(old, frozenset()):
        return
    old_name, new_name = state_name(old), state_name(new)
    if old in TERMINAL_STATES:
        why = f"{old_name} is terminal and cannot change"
    elif new == types.TASK_STATE_UNSPECIFIED:
        why = "TASK_STATE_UNSPECIFIED is not a valid task state"
    elif old not in ALLOWED_TRANSITIONS:
        why = f"{old_name} is not a known task state"
    elif old == types.TASK_STATE_UNSPECIFIED:
        why = "a task in TASK_STATE_UNSPECIFIED has no valid lifecycle"
    elif new not in ALLOWED_TRANSITIONS:
        why = f"{new_name} is not a known task state"
    else:
        why = f"{new_name} cannot follow {old_name}"
    raise InvalidTransitionError(
        f"invalid task state transition {old_name} -> {new_name}: {why}", old_state=old, new_state=new
    )
