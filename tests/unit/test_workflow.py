"""The application workflow as data: the maps are total and consistent, and nothing outside them is possible."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from renkei.hub.access.applications import (
    ACTION_EVENT,
    DECISIONS,
    EVENT_ACTION,
    EVENT_PARTIES,
    FINAL_STATES,
    OPEN_STATES,
    PART_EVENT,
    PART_TRANSITIONS,
    STATE_OWNERS,
    TRANSITION_AUDIT_EVENT,
    VALID_TRANSITIONS,
    Application,
    ApplicationPart,
    ApplicationState,
    Event,
    PartState,
    Party,
    SeparationOfDuties,
    can_transition,
    check_part_transition,
    check_transition,
    plan_move,
    state_diagram,
)
from renkei.hub.access.authz import Action, Forbidden, InvalidTransition

S = ApplicationState
P = PartState
DOCS = Path(__file__).resolve().parents[2] / "docs" / "permissions.md"


def test_every_state_has_transitions_and_owners() -> None:
    assert set(ApplicationState) - VALID_TRANSITIONS.keys() == set()
    assert set(ApplicationState) - STATE_OWNERS.keys() == set()
    assert set(PartState) - PART_TRANSITIONS.keys() == set()


def test_open_and_final_states_include_every_state_and_are_disjoint() -> None:
    assert set(ApplicationState) == OPEN_STATES | FINAL_STATES
    assert set() == OPEN_STATES & FINAL_STATES
    assert {s for s in ApplicationState if not VALID_TRANSITIONS[s]} == FINAL_STATES
    assert all(STATE_OWNERS[s] == frozenset() for s in FINAL_STATES)


def test_every_transition_has_exactly_one_audit_event_and_no_event_names_a_non_transition() -> None:
    edges = {(source, target) for source, targets in VALID_TRANSITIONS.items() for target in targets}
    assert set(TRANSITION_AUDIT_EVENT) == edges
    part_edges = {(source, target) for source, targets in PART_TRANSITIONS.items() for target in targets}
    assert set(PART_EVENT) == part_edges


def test_every_event_has_parties_and_state_owners_are_exactly_who_may_leave_the_state() -> None:
    assert set(EVENT_PARTIES) == set(Event)
    for state in ApplicationState:
        leaving = [EVENT_PARTIES[TRANSITION_AUDIT_EVENT[(state, t)]] for t in VALID_TRANSITIONS[state]]
        assert STATE_OWNERS[state] == frozenset().union(*leaving), state


def test_events_are_the_authz_actions_of_the_same_name() -> None:
    assert all(str(event) == str(action) for event, action in EVENT_ACTION.items())
    not_moves = {
        Action.APPLICATION_CREATE,
        Action.APPLICATION_READ,
        Action.APPLICATION_EDIT,
    }  # no state change
    assert set(ACTION_EVENT) | not_moves == {a for a in Action if a.startswith("application.")}
    assert set(EVENT_ACTION) == set(Event) - {Event.EXPIRE}  # time is not asked, it passes


def test_each_state_is_entered_by_one_kind_of_move_so_a_planned_move_keeps_its_name() -> None:
    entered: dict[ApplicationState, set[Event]] = {}
    for (_, target), event in TRANSITION_AUDIT_EVENT.items():
        entered.setdefault(target, set()).add(event)
    assert all(len(events) == 1 for events in entered.values()), entered


def test_a_part_event_is_the_same_move_as_the_application_event() -> None:
    application_events = set(TRANSITION_AUDIT_EVENT.values())
    assert set(PART_EVENT.values()) <= application_events


# --- (state, target, actor): allowed iff listed, by hand, below ---------------------------------------------

ACTORS: dict[str, frozenset[Party]] = {
    "applicant": frozenset({Party.APPLICANT}),
    "owning_steward": frozenset({Party.OWNING_STEWARD}),
    # The applicant's account became a steward of an owning department: still the applicant.
    "applicant_now_owning_steward": frozenset({Party.APPLICANT, Party.OWNING_STEWARD}),
    "other_department_steward": frozenset(),
    "other_analyst": frozenset(),
    "auditor": frozenset(),
    "admin": frozenset({Party.ADMIN}),
    "clock": frozenset({Party.CLOCK}),
}
APPLICANTS = {"applicant", "applicant_now_owning_steward"}
STEWARD = {"owning_steward"}
REVOKERS = {"owning_steward", "applicant_now_owning_steward", "admin"}

# The oracle, written independently of the maps: (state, target) -> who may make that move.
ALLOWED: dict[tuple[ApplicationState, ApplicationState], set[str]] = {
    (S.DRAFT, S.SUBMITTED): APPLICANTS,
    (S.DRAFT, S.WITHDRAWN): APPLICANTS,
    (S.SUBMITTED, S.PARTIALLY_APPROVED): STEWARD,
    (S.SUBMITTED, S.APPROVED): STEWARD,
    (S.SUBMITTED, S.REJECTED): STEWARD,
    (S.SUBMITTED, S.WITHDRAWN): APPLICANTS,
    (S.SUBMITTED, S.REVOKED): REVOKERS,
    (S.PARTIALLY_APPROVED, S.PARTIALLY_APPROVED): STEWARD,
    (S.PARTIALLY_APPROVED, S.APPROVED): STEWARD,
    (S.PARTIALLY_APPROVED, S.REJECTED): STEWARD,
    (S.PARTIALLY_APPROVED, S.WITHDRAWN): APPLICANTS,
    (S.PARTIALLY_APPROVED, S.REVOKED): REVOKERS,
    (S.APPROVED, S.WITHDRAWN): APPLICANTS,
    (S.APPROVED, S.EXPIRED): {"clock"},
    (S.APPROVED, S.REVOKED): REVOKERS,
}


@given(
    state=st.sampled_from(list(ApplicationState)),
    target=st.sampled_from(list(ApplicationState)),
    actor=st.sampled_from(sorted(ACTORS)),
)
def test_a_transition_is_possible_iff_listed_and_made_by_its_owner(
    state: ApplicationState, target: ApplicationState, actor: str
) -> None:
    parties = ACTORS[actor]
    allowed = actor in ALLOWED.get((state, target), set())
    assert can_transition(state, target, parties) is allowed
    if allowed:
        assert check_transition(state, target, parties) is TRANSITION_AUDIT_EVENT[(state, target)]
    elif (state, target) not in ALLOWED:
        with pytest.raises(InvalidTransition):
            check_transition(state, target, parties)
    else:
        with pytest.raises(Forbidden) as refused:
            check_transition(state, target, parties)
        assert not isinstance(refused.value, InvalidTransition)


def test_the_oracle_covers_the_same_transitions_as_the_map() -> None:
    assert set(ALLOWED) == set(TRANSITION_AUDIT_EVENT)


@pytest.mark.parametrize("target", [S.APPROVED, S.PARTIALLY_APPROVED, S.REJECTED])
def test_nobody_decides_on_their_own_application_even_as_its_departments_steward(
    target: ApplicationState,
) -> None:
    with pytest.raises(SeparationOfDuties, match="own application"):
        check_transition(S.SUBMITTED, target, ACTORS["applicant_now_owning_steward"])


def test_admins_revoke_but_never_approve_or_reject() -> None:
    admin = ACTORS["admin"]
    assert can_transition(S.APPROVED, S.REVOKED, admin)
    assert not any(
        can_transition(S.SUBMITTED, t, admin) for t in (S.APPROVED, S.PARTIALLY_APPROVED, S.REJECTED)
    )
    assert {Event.APPROVE, Event.REJECT} == DECISIONS


@pytest.mark.parametrize("state", list(PartState))
@pytest.mark.parametrize("target", list(PartState))
def test_a_part_moves_only_along_its_map(state: PartState, target: PartState) -> None:
    if target in PART_TRANSITIONS[state]:
        assert check_part_transition(state, target) is PART_EVENT[(state, target)]
    else:
        with pytest.raises(InvalidTransition):
            check_part_transition(state, target)


# --- planning a move (transient objects, no database) ------------------------------------------------------


def application_with_parts(*states: PartState) -> Application:
    parts = [ApplicationPart(id=i + 1, department_id=i + 1, state=s) for i, s in enumerate(states)]
    return Application(id=1, applicant_id=1, state=S.SUBMITTED, parts=parts)


def test_approving_the_last_pending_part_approves_the_application() -> None:
    application = application_with_parts(P.APPROVED, P.PENDING)
    move = plan_move(Event.APPROVE, application, application.parts[1])
    assert (move.target, move.part_target) == (S.APPROVED, P.APPROVED)


def test_approving_one_of_several_pending_parts_approves_it_partially() -> None:
    application = application_with_parts(P.PENDING, P.PENDING)
    assert plan_move(Event.APPROVE, application, application.parts[0]).target is S.PARTIALLY_APPROVED


def test_decisions_are_about_a_part_not_the_whole_application() -> None:
    with pytest.raises(InvalidTransition):
        plan_move(Event.APPROVE, application_with_parts(P.PENDING), None)


# --- the documentation shows the map -----------------------------------------------------------------------


def test_the_documented_state_diagram_is_the_transition_map() -> None:
    text = DOCS.read_text(encoding="utf-8")
    diagrams = re.findall(r"```mermaid\n(stateDiagram-v2\n.*?)\n```", text, flags=re.DOTALL)
    assert diagrams == [state_diagram()], (
        "regenerate with: python -c 'from renkei.hub.access.applications import state_diagram; print(state_diagram())'"
    )


def test_every_action_and_state_is_documented() -> None:
    text = DOCS.read_text(encoding="utf-8")
    missing = [str(a) for a in Action if f"`{a}`" not in text]
    missing += [str(s) for s in ApplicationState if f"`{s}`" not in text]
    assert missing == []
