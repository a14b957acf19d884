"""The task state machine against the A2A v1.0 lifecycle (spec §4.1.3, §3.1.5, §3.4.2, §7.5)."""

from __future__ import annotations

import itertools

import pytest

from a2a_grpc import types
from a2a_grpc.tasks import (
    INTERRUPTED_STATES,
    TERMINAL_STATES,
    InvalidTransitionError,
    check_transition,
    is_interrupted,
    is_terminal,
)

ALL_STATES = [
    "TASK_STATE_UNSPECIFIED",
    "TASK_STATE_SUBMITTED",
    "TASK_STATE_WORKING",
    "TASK_STATE_COMPLETED",
    "TASK_STATE_FAILED",
    "TASK_STATE_CANCELED",
    "TASK_STATE_INPUT_REQUIRED",
    "TASK_STATE_REJECTED",
    "TASK_STATE_AUTH_REQUIRED",
]

# Written out by hand from the specification, deliberately not derived from the module.
_FROM_ACTIVE = {
    "TASK_STATE_WORKING",
    "TASK_STATE_INPUT_REQUIRED",
    "TASK_STATE_AUTH_REQUIRED",
    "TASK_STATE_COMPLETED",
    "TASK_STATE_FAILED",
    "TASK_STATE_CANCELED",
    "TASK_STATE_REJECTED",
}
EXPECTED: dict[str, set[str]] = {
    "TASK_STATE_UNSPECIFIED": set(),
    "TASK_STATE_SUBMITTED": _FROM_ACTIVE,
    "TASK_STATE_WORKING": _FROM_ACTIVE,
    "TASK_STATE_INPUT_REQUIRED": _FROM_ACTIVE,
    "TASK_STATE_AUTH_REQUIRED": _FROM_ACTIVE,
    "TASK_STATE_COMPLETED": set(),
    "TASK_STATE_FAILED": set(),
    "TASK_STATE_CANCELED": set(),
    "TASK_STATE_REJECTED": set(),
}


def test_expected_table_covers_every_enum_value() -> None:
    assert sorted(ALL_STATES) == sorted(types.TaskState.keys())
    assert set(EXPECTED) == set(ALL_STATES)


@pytest.mark.parametrize(("old", "new"), list(itertools.product(ALL_STATES, ALL_STATES)))
def test_every_transition_pair(old: str, new: str) -> None:
    old_value, new_value = types.TaskState.Value(old), types.TaskState.Value(new)
    if new in EXPECTED[old]:
        check_transition(old_value, new_value)
        return
    with pytest.raises(InvalidTransitionError) as caught:
        check_transition(old_value, new_value)
    err = caught.value
    assert old in str(err)
    assert new in str(err)
    assert (err.old_state, err.new_state) == (old_value, new_value)
    assert err.field == "status.state"
    assert isinstance(err, ValueError)


def test_state_sets() -> None:
    assert {types.TaskState.Name(s) for s in TERMINAL_STATES} == {
        "TASK_STATE_COMPLETED",
        "TASK_STATE_FAILED",
        "TASK_STATE_CANCELED",
        "TASK_STATE_REJECTED",
    }
    assert {types.TaskState.Name(s) for s in INTERRUPTED_STATES} == {
        "TASK_STATE_INPUT_REQUIRED",
        "TASK_STATE_AUTH_REQUIRED",
    }
    assert isinstance(TERMINAL_STATES, frozenset)
    assert isinstance(INTERRUPTED_STATES, frozenset)
    for name in ALL_STATES:
        value = types.TaskState.Value(name)
        assert is_terminal(value) == (value in TERMINAL_STATES)
        assert is_interrupted(value) == (value in INTERRUPTED_STATES)


@pytest.mark.parametrize("terminal", sorted(TERMINAL_STATES))
def test_terminal_states_refuse_everything(terminal: int) -> None:
    for target in [*range(len(ALL_STATES)), 99]:
        with pytest.raises(InvalidTransitionError, match="is terminal"):
            check_transition(terminal, target)


def test_unknown_state_numbers_are_refused_and_named() -> None:
    with pytest.raises(InvalidTransitionError, match=r"TaskState\(42\)"):
        check_transition(types.TASK_STATE_WORKING, 42)
    with pytest.raises(InvalidTransitionError, match=r"TaskState\(42\)"):
        check_transition(42, types.TASK_STATE_WORKING)


def test_unspecified_target_message() -> None:
    with pytest.raises(InvalidTransitionError, match="TASK_STATE_UNSPECIFIED is not a valid task state"):
        check_transition(types.TASK_STATE_WORKING, types.TASK_STATE_UNSPECIFIED)
