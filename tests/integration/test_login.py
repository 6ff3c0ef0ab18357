"""Login end to end: terminal → password (throttled) → staff card or TOTP → session, every step audited.

Runs on SQLite and PostgreSQL (``database_url``). Checklist rows 9–13 and 41–44.
"""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from argon2 import extract_parameters
from sqlalchemy import select
from typer.testing import CliRunner
from webauthn.helpers import bytes_to_base64url

from renkei.cli.access import register
from renkei.hub.access.cards import CardCredential
from renkei.hub.access.login import (
    EnrollmentError,
    LoginFailedError,
    LoginThrottledError,
    NoSecondFactorError,
    PendingLoginRecord,
    SecondFactorError,
    TerminalNotRegisteredError,
    TotpCodeUsedError,
)
from renkei.hub.access.passwords import (
    HISTORY_SIZE,
    HashParameters,
    PasswordHistoryRecord,
    PasswordRecord,
    Passwords,
    WeakPasswordError,
    set_password,
)
from renkei.hub.access.people import User
from renkei.hub.access.sessions import LoginSession, SessionRejectedError
from renkei.hub.access.throttle import Scope, Throttle, ThrottlePolicy
from renkei.hub.access.totp import TotpSecret, current_code, verify_totp
from renkei.hub.audit import AuditEntry
from renkei.hub.home import Hub
from renkei.hub.rotation import Rewrapped, rotate_kek
from tests.support import ADDR, AccessWorld, access_world, make_hub_home
from tests.support.webauthn_authenticator import SoftwareAuthenticator

PASSWORD = "Canary-Passw0rd-7f3a9c horse"  # a canary: must never appear in the audit log
OTHER_PASSWORD = "another fine passphrase 42"


@pytest.fixture
def db_world(database_url: str, tmp_path: Path) -> Iterator[AccessWorld]:
    """On SQLite and on PostgreSQL: the flows and the statements that differ by dialect (throttle upserts)."""
    with access_world(database_url, tmp_path) as built:
        yield built


@pytest.fixture
def world(tmp_path: Path) -> Iterator[AccessWorld]:
    """SQLite only, for the many variations of one flow (PostgreSQL runs the flows themselves)."""
    with access_world(f"sqlite:///{tmp_path / 'catalog.db'}", tmp_path) as built:
        yield built


def card_user(world: AccessWorld, login_id: str = "yamada") -> tuple[User, SoftwareAuthenticator]:
    user = world.add_user(login_id, PASSWORD)
    return user, world.enroll_card(user, PASSWORD)


def card_login(
    world: AccessWorld, login_id: str, card: SoftwareAuthenticator, replaces: str | None = None
) -> LoginSession:
    pending = world.login.begin_login(world.terminal, login_id, PASSWORD, ADDR)
    assert pending.card_options_json is not None
    return world.login.finish_login_with_card(
        pending, card.get(pending.card_options_json), terminal=world.terminal, replaces=replaces
    )


def entries(world: AccessWorld, action: str | None = None) -> list[AuditEntry]:
    return [e for e in world.audit_entries() if action is None or e.action == action]


# --- the two flows ------------------------------------------------------------------------------------------


def test_card_login_end_to_end(db_world: AccessWorld) -> None:
    world = db_world
    _, card = card_user(world)
    pending = world.login.begin_login(world.terminal, "ＹＡＭＡＤＡ", PASSWORD, ADDR)  # full-width id typed
    assert pending.factor == "card" and pending.login_id == "yamada"
    options = json.loads(pending.card_options_json or "{}")
    assert options["rpId"] == "localhost" and options["userVerification"] == "discouraged"
    assert [c["id"] for c in options["allowCredentials"]] == [bytes_to_base64url(card.credential_id)]

    session = world.login.finish_login_with_card(
        pending, card.get(pending.card_options_json or ""), terminal=world.terminal
    )

    assert session.login_id == "yamada" and session.terminal_name == "term-01"
    assert world.login.sessions.validate(session.token, terminal=world.terminal).id == session.id
    begin, finish = entries(world, "login.password")[-1], entries(world, "login.card")[-1]
    assert (begin.result, finish.result) == ("ok", "ok")
    assert (finish.actor, finish.terminal, finish.client_addr) == ("yamada", "term-01", ADDR)
    assert finish.details["session_id"] == session.id


def test_totp_login_end_to_end(db_world: AccessWorld) -> None:
    world = db_world
    user = world.add_user("sato", PASSWORD, display_name="佐藤 花子")
    secret = world.enroll_totp(user)
    pending = world.login.begin_login(world.terminal, "sato", PASSWORD, ADDR)
    assert pending.factor == "totp" and pending.card_options_json is None

    session = world.login.finish_login_with_totp(
        pending, current_code(secret, world.clock.now()), terminal=world.terminal
    )

    assert session.login_id == "sato"
    assert entries(world, "login.totp")[-1].result == "ok"


def test_a_card_user_cannot_log_in_with_totp_and_vice_versa(world: AccessWorld) -> None:
    card_user(world)
    pending = world.login.begin_login(world.terminal, "yamada", PASSWORD, ADDR)
    with pytest.raises(SecondFactorError):
        world.login.finish_login_with_totp(pending, "123456", terminal=world.terminal)
    assert entries(world, "login.totp")[-1].reason == "wrong_factor"


def test_registering_a_card_replaces_totp(world: AccessWorld) -> None:
    user = world.add_user("sato", PASSWORD)
    world.enroll_totp(user)
    card = world.enroll_card(user, PASSWORD)
    assert entries(world, "card.register")[-1].details["totp_removed"] is True
    assert card_login(world, "sato", card).login_id == "sato"


def test_no_second_factor_is_refused_after_the_password(world: AccessWorld) -> None:
    world.add_user("suzuki", PASSWORD)
    with pytest.raises(NoSecondFactorError):
        world.login.begin_login(world.terminal, "suzuki", PASSWORD, ADDR)
    assert entries(world, "login.password")[-1].reason == "no_second_factor"


# --- the same answer for every kind of wrong ----------------------------------------------------------------


def test_unknown_user_wrong_password_and_disabled_user_get_the_same_answer(db_world: AccessWorld) -> None:
    world = db_world
    card_user(world)
    world.add_user("gone", PASSWORD, disabled=True)
    answers = []
    for login_id, password in [("nobody", PASSWORD), ("yamada", "wrong password here"), ("gone", PASSWORD)]:
        with pytest.raises(LoginFailedError) as caught:
            world.login.begin_login(world.terminal, login_id, password, ADDR)
        answers.append((type(caught.value), caught.value.render(), caught.value.args, caught.value.exit_code))
    assert answers[0] == answers[1] == answers[2]
    failed = entries(world, "login.password")[-3:]
    assert [(e.actor, e.reason) for e in failed] == [
        ("unknown", "unknown_user"),
        ("yamada", "bad_password"),
        ("gone", "user_disabled"),
    ]
    assert failed[0].resource == "" and failed[1].resource == "user/yamada"


def test_unknown_user_and_wrong_password_take_similar_time(tmp_path: Path) -> None:
    """Both paths run exactly one argon2 verification at production cost (ASVS 6.3.8)."""
    generous = ThrottlePolicy(1000, dt.timedelta(seconds=1), dt.timedelta(seconds=1), dt.timedelta(hours=1))
    options = {
        "passwords": Passwords(),
        "throttle": Throttle(account_policy=generous, address_policy=generous),
    }
    with access_world(f"sqlite:///{tmp_path / 'timing.db'}", tmp_path, **options) as world:
        world.add_user("yamada", PASSWORD)

        def timed(login_id: str) -> float:
            start = time.perf_counter()
            with pytest.raises(LoginFailedError):
                world.login.begin_login(world.terminal, login_id, "wrong password here", ADDR)
            return time.perf_counter() - start

        timed("warm-up")
        unknown, known = [], []
        for _ in range(5):  # interleaved, so a busy machine slows both alike
            unknown.append(timed("nobody"))
            known.append(timed("yamada"))
    # The fastest run of each is the work itself; without the dummy hash the ratio would be about 0.1.
    ratio = min(unknown) / min(known)
    assert 0.5 < ratio < 2.0, (unknown, known)


# --- throttling ---------------------------------------------------------------------------------------------


def fail(world: AccessWorld, login_id: str = "yamada", addr: str = ADDR) -> None:
    with pytest.raises(LoginFailedError):
        world.login.begin_login(world.terminal, login_id, "wrong password here", addr)


def wait_now(world: AccessWorld, login_id: str = "yamada", addr: str = ADDR) -> dt.timedelta:
    with pytest.raises(LoginThrottledError) as caught:
        world.login.begin_login(world.terminal, login_id, PASSWORD, addr)
    return caught.value.retry_after


def test_backoff_after_five_failures_grows_and_is_capped(db_world: AccessWorld) -> None:
    world = db_world
    card_user(world)
    for _ in range(5):
        fail(world)
    waits = []
    for _ in range(8):
        waits.append(wait_now(world))
        world.clock.advance(seconds=waits[-1].total_seconds())
        fail(world)
    assert [w.total_seconds() for w in waits] == [30, 60, 120, 240, 480, 900, 900, 900]
    assert entries(world, "login.password")[-2].reason == "throttled"


def test_during_the_wait_even_the_right_password_is_not_checked(world: AccessWorld) -> None:
    card_user(world)
    for _ in range(5):
        fail(world)
    wait_now(world)
    throttled = entries(world, "login.password")[-1]
    assert (throttled.result, throttled.reason) == ("denied", "throttled")
    assert throttled.details["retry_after_seconds"] == 30


def test_no_permanent_lockout_and_success_resets(world: AccessWorld) -> None:
    _, card = card_user(world)
    for _ in range(40):  # an attacker, from elsewhere, keeps trying as soon as allowed
        fail(world, addr="10.6.6.6")
        world.clock.advance(minutes=15)
    # The user waits out at most the cap and gets in; the counter starts afresh.
    assert card_login(world, "yamada", card).login_id == "yamada"
    with world.session() as session:
        assert world.login.throttle.failures(session, Scope.ACCOUNT, "yamada") == 0
    fail(world)
    assert world.login.begin_login(world.terminal, "yamada", PASSWORD, ADDR).factor == "card"


def test_unknown_accounts_are_throttled_like_real_ones(world: AccessWorld) -> None:
    for _ in range(5):
        fail(world, "nobody")
    assert wait_now(world, "nobody").total_seconds() == 30


def test_one_address_cannot_spray_many_accounts(db_world: AccessWorld) -> None:
    world = db_world
    _, card = card_user(world)
    for i in range(20):
        fail(world, f"victim{i}", addr="10.9.9.9")
    assert wait_now(world, "yamada", addr="10.9.9.9").total_seconds() == 30
    assert card_login(world, "yamada", card).login_id == "yamada"  # from another address: fine


def test_second_factor_failures_count_against_the_account(world: AccessWorld) -> None:
    user = world.add_user("sato", PASSWORD)
    world.enroll_totp(user)
    for _ in range(5):
        pending = world.login.begin_login(world.terminal, "sato", PASSWORD, ADDR)
        with pytest.raises(SecondFactorError):
            world.login.finish_login_with_totp(pending, "000000", terminal=world.terminal)
    assert wait_now(world, "sato").total_seconds() == 30


# --- terminals ----------------------------------------------------------------------------------------------


def test_unregistered_terminal_is_refused_and_logged(world: AccessWorld) -> None:
    card_user(world)
    with pytest.raises(TerminalNotRegisteredError):
        world.login.begin_login(None, "yamada", PASSWORD, ADDR)
    refused = entries(world, "login.password")[-1]
    assert (refused.actor, refused.result, refused.reason, refused.client_addr) == (
        "unknown",
        "denied",
        "unregistered_terminal",
        ADDR,
    )


def test_pending_login_is_bound_to_its_terminal_single_use_and_short_lived(world: AccessWorld) -> None:
    _, card = card_user(world)
    other, _ = world.add_terminal("term-02")
    pending = world.login.begin_login(world.terminal, "yamada", PASSWORD, ADDR)
    assertion = card.get(pending.card_options_json or "")
    with pytest.raises(SecondFactorError):
        world.login.finish_login_with_card(pending, assertion, terminal=other)
    with pytest.raises(SecondFactorError):  # consumed by the failed try
        world.login.finish_login_with_card(pending, assertion, terminal=world.terminal)
    assert [e.reason for e in entries(world, "login.card")[-2:]] == ["terminal_mismatch", "pending_unknown"]

    late = world.login.begin_login(world.terminal, "yamada", PASSWORD, ADDR)
    world.clock.advance(minutes=5, seconds=1)
    with pytest.raises(SecondFactorError):
        world.login.finish_login_with_card(
            late, card.get(late.card_options_json or ""), terminal=world.terminal
        )
    assert entries(world, "login.card")[-1].reason == "pending_expired"
    with world.session() as session:
        assert session.scalars(select(PendingLoginRecord)).all() == []


# --- staff cards --------------------------------------------------------------------------------------------


def test_a_cloned_card_is_detected_and_disabled(db_world: AccessWorld) -> None:
    world = db_world
    _, card = card_user(world)
    card_login(world, "yamada", card)
    clone = card.clone()
    card_login(world, "yamada", card)  # the genuine card moves on to 2
    with pytest.raises(SecondFactorError):
        card_login(world, "yamada", clone)  # the clone says 2 again
    assert entries(world, "login.card")[-1].reason == "clone_suspected"
    with world.session() as session:
        stored = session.scalars(select(CardCredential)).one()
        assert stored.revoked_reason == "clone_suspected" and stored.revoked_at is not None
    with pytest.raises(NoSecondFactorError):  # neither copy works any more
        world.login.begin_login(world.terminal, "yamada", PASSWORD, ADDR)


def test_cards_without_a_counter_are_accepted(world: AccessWorld) -> None:
    user = world.add_user("tanaka", PASSWORD)
    card = world.enroll_card(user, PASSWORD, SoftwareAuthenticator(counter_step=0))
    card_login(world, "tanaka", card)
    assert card_login(world, "tanaka", card).login_id == "tanaka"


def test_an_assertion_from_another_origin_is_refused(world: AccessWorld) -> None:
    _, card = card_user(world)
    card.origin = "https://phish.example"
    with pytest.raises(SecondFactorError):
        card_login(world, "yamada", card)
    assert entries(world, "login.card")[-1].reason == "assertion_invalid"


def test_another_users_card_is_refused(world: AccessWorld) -> None:
    card_user(world, "yamada")
    _, other_card = card_user(world, "sato")
    pending = world.login.begin_login(world.terminal, "yamada", PASSWORD, ADDR)
    options = json.loads(pending.card_options_json or "")
    options["allowCredentials"] = []  # a client that ignores the allow list
    with pytest.raises(SecondFactorError):
        world.login.finish_login_with_card(
            pending, other_card.get(json.dumps(options)), terminal=world.terminal
        )
    assert entries(world, "login.card")[-1].reason == "unknown_card"


def test_malformed_card_responses_are_refused_not_crashing(world: AccessWorld) -> None:
    _, card = card_user(world)
    pending = world.login.begin_login(world.terminal, "yamada", PASSWORD, ADDR)
    good = card.get(pending.card_options_json or "")
    broken: list[object] = [
        None,
        7,
        "",
        "{}",
        {},
        {"id": "x", "rawId": "x", "type": "public-key", "response": {}},
    ]
    for field in ("clientDataJSON", "authenticatorData", "signature"):
        for wrong in ("", "!!!", "AAAA", 5):
            broken.append({**good, "response": {**good["response"], field: wrong}})
    for response in broken:
        world.clock.advance(hours=2)  # let the throttle forget, so each try reaches the card check
        attempt = world.login.begin_login(world.terminal, "yamada", PASSWORD, ADDR)
        with pytest.raises(SecondFactorError):
            world.login.finish_login_with_card(attempt, response, terminal=world.terminal)  # type: ignore[arg-type]
    ticket = world.card_ticket(world.add_user("kato", PASSWORD))
    registrations: list[object] = [
        None,
        {},
        "{}",
        {"id": "x", "rawId": "x", "type": "public-key", "response": {"clientDataJSON": "!!"}},
    ]
    for registration in registrations:
        start = world.login.begin_card_enrollment(world.terminal, "kato", PASSWORD, ticket, ADDR)
        with pytest.raises(EnrollmentError):
            world.login.finish_card_enrollment(
                start.handle,
                registration,  # type: ignore[arg-type]
                terminal=world.terminal,
                client_addr=ADDR,
            )


def test_enrollment_ticket_is_single_use(db_world: AccessWorld) -> None:
    world = db_world
    user = world.add_user("yamada", PASSWORD)
    ticket = world.card_ticket(user)
    start = world.login.begin_card_enrollment(world.terminal, "yamada", PASSWORD, ticket, ADDR)
    world.login.finish_card_enrollment(
        start.handle,
        SoftwareAuthenticator().create(start.options_json),
        terminal=world.terminal,
        client_addr=ADDR,
    )
    with pytest.raises(EnrollmentError):
        world.login.begin_card_enrollment(world.terminal, "yamada", PASSWORD, ticket, ADDR)
    assert entries(world, "card.register_begin")[-1].reason == "ticket_invalid"


def test_enrollment_ticket_expires(world: AccessWorld) -> None:
    user = world.add_user("yamada", PASSWORD)
    ticket = world.card_ticket(user)
    world.clock.advance(hours=8, seconds=1)
    with pytest.raises(EnrollmentError):
        world.login.begin_card_enrollment(world.terminal, "yamada", PASSWORD, ticket, ADDR)


def test_a_ticket_is_consumed_only_by_a_verified_card(world: AccessWorld) -> None:
    user = world.add_user("yamada", PASSWORD)
    world.add_user("sato", OTHER_PASSWORD)
    ticket = world.card_ticket(user)
    with pytest.raises(EnrollmentError):  # another user cannot use yamada's ticket
        world.login.begin_card_enrollment(world.terminal, "sato", OTHER_PASSWORD, ticket, ADDR)
    start = world.login.begin_card_enrollment(world.terminal, "yamada", PASSWORD, ticket, ADDR)
    phished = SoftwareAuthenticator(origin="https://phish.example").create(start.options_json)
    with pytest.raises(EnrollmentError):
        world.login.finish_card_enrollment(start.handle, phished, terminal=world.terminal, client_addr=ADDR)
    assert entries(world, "card.register")[-1].reason == "registration_invalid"
    card = world.enroll_card(user, PASSWORD, ticket=ticket)  # the same ticket still works
    assert card_login(world, "yamada", card).login_id == "yamada"


def test_enrollment_ceremony_expires(world: AccessWorld) -> None:
    user = world.add_user("yamada", PASSWORD)
    start = world.login.begin_card_enrollment(
        world.terminal, "yamada", PASSWORD, world.card_ticket(user), ADDR
    )
    world.clock.advance(minutes=5, seconds=1)
    with pytest.raises(EnrollmentError):
        world.login.finish_card_enrollment(
            start.handle,
            SoftwareAuthenticator().create(start.options_json),
            terminal=world.terminal,
            client_addr=ADDR,
        )


# --- TOTP ---------------------------------------------------------------------------------------------------


def totp_login(world: AccessWorld, code: str) -> None:
    pending = world.login.begin_login(world.terminal, "sato", PASSWORD, ADDR)
    world.login.finish_login_with_totp(pending, code, terminal=world.terminal)


def test_totp_codes_are_single_use_and_accepted_one_step_either_side(world: AccessWorld) -> None:
    secret = world.enroll_totp(world.add_user("sato", PASSWORD))
    code = current_code(secret, world.clock.now())
    totp_login(world, code)
    with pytest.raises(TotpCodeUsedError, match="次のコード"):
        totp_login(world, code)  # replayed: refused, and the user is told to wait for the next code
    assert entries(world, "login.totp")[-1].reason == "totp_reused"
    with pytest.raises(SecondFactorError) as wrong:
        totp_login(world, "000000" if code != "000000" else "111111")
    assert not isinstance(wrong.value, TotpCodeUsedError)  # a wrong code is just wrong
    assert entries(world, "login.totp")[-1].reason == "totp_invalid"
    world.clock.advance(seconds=60)
    totp_login(
        world, current_code(secret, world.clock.now() - dt.timedelta(seconds=30))
    )  # one step late: fine
    world.clock.advance(seconds=120)
    with pytest.raises(SecondFactorError):
        totp_login(world, current_code(secret, world.clock.now() - dt.timedelta(seconds=60)))  # two steps: no
    totp_login(world, " ".join(current_code(secret, world.clock.now())))  # spaces typed: fine
    with world.session() as session:
        assert session.scalars(select(TotpSecret.last_used_step)).one() is not None


# --- sessions at login --------------------------------------------------------------------------------------


def test_totp_secrets_are_stored_wrapped_by_the_kek_and_bound_to_their_user(world: AccessWorld) -> None:
    """Issue 9, item 10: whoever reads the catalog does not get the shared keys that make the codes."""
    sato, suzuki = world.add_user("sato", PASSWORD), world.add_user("suzuki", PASSWORD)
    secret = world.enroll_totp(sato)
    world.enroll_totp(suzuki)
    with world.engine.connect() as connection:
        rows = connection.exec_driver_sql("SELECT * FROM totp_secrets").all()
    assert secret not in repr(rows) and base64.b32decode(secret).hex() not in repr(rows).lower()
    with world.session() as session:  # an insider copies sato's secret to suzuki's row
        stored = {r.user_id: r for r in session.scalars(select(TotpSecret))}
        stored[suzuki.id].wrapped_secret = stored[sato.id].wrapped_secret
        assert json.loads(stored[sato.id].wrapped_secret)["kek_id"] == world.login.kek.key_id
        session.commit()
    pending = world.login.begin_login(world.terminal, "suzuki", PASSWORD, ADDR)
    with pytest.raises(SecondFactorError):
        world.login.finish_login_with_totp(
            pending, current_code(secret, world.clock.now()), terminal=world.terminal
        )
    assert entries(world, "login.totp")[-1].reason == "totp_secret_unreadable"
    pending = world.login.begin_login(world.terminal, "sato", PASSWORD, ADDR)
    world.login.finish_login_with_totp(
        pending, current_code(secret, world.clock.now()), terminal=world.terminal
    )


def test_login_rotates_the_session_token(db_world: AccessWorld) -> None:
    world = db_world
    _, card = card_user(world)
    first = card_login(world, "yamada", card)
    second = card_login(world, "yamada", card, replaces=first.token)
    assert second.token != first.token and len(second.token) >= 43
    with pytest.raises(SessionRejectedError):
        world.login.sessions.validate(first.token, terminal=world.terminal)
    assert world.login.sessions.validate(second.token, terminal=world.terminal).id == second.id


def test_a_pending_token_is_not_a_session(world: AccessWorld) -> None:
    card_user(world)
    pending = world.login.begin_login(world.terminal, "yamada", PASSWORD, ADDR)
    with pytest.raises(SessionRejectedError):
        world.login.sessions.validate(pending.token, terminal=world.terminal)


def test_logout_ends_the_session_server_side(world: AccessWorld) -> None:
    _, card = card_user(world)
    session = card_login(world, "yamada", card)
    assert world.login.logout(session.token, terminal=world.terminal, client_addr=ADDR)
    with pytest.raises(SessionRejectedError):
        world.login.sessions.validate(session.token, terminal=world.terminal)
    assert not world.login.logout(session.token)
    assert entries(world, "logout")[-1].actor == "yamada"


def test_old_hashes_are_upgraded_at_login(tmp_path: Path) -> None:
    stronger = Passwords(HashParameters(time_cost=2, memory_kib=128, parallelism=1))
    with access_world(f"sqlite:///{tmp_path / 'catalog.db'}", tmp_path, passwords=stronger) as world:
        user = world.add_user("sato", PASSWORD)
        with world.session() as session:  # as if hashed long ago with weaker parameters
            record = session.get(PasswordRecord, user.id)
            assert record is not None
            record.encoded_hash = Passwords(HashParameters(1, 64, 1)).hash(PASSWORD)
            session.commit()
        world.enroll_totp(user)
        world.login.begin_login(world.terminal, "sato", PASSWORD, ADDR)
        with world.session() as session:
            upgraded = extract_parameters(session.get(PasswordRecord, user.id).encoded_hash)  # type: ignore[union-attr]
    assert (upgraded.time_cost, upgraded.memory_cost) == (2, 128)


def test_a_password_set_by_an_admin_must_be_changed(world: AccessWorld) -> None:
    _, card = card_user(world)
    with world.session() as session:
        session.execute(select(PasswordRecord)).scalar_one().must_change = True
        session.commit()
    elsewhere = card_login(world, "yamada", card)
    current = card_login(world, "yamada", card)
    assert current.password_change_required
    with pytest.raises(WeakPasswordError):
        world.login.change_password(
            current.token, PASSWORD, "password1234", terminal=world.terminal, client_addr=ADDR
        )
    with pytest.raises(LoginFailedError):
        world.login.change_password(
            current.token, "not it at all!", OTHER_PASSWORD, terminal=world.terminal, client_addr=ADDR
        )
    changed = world.login.change_password(
        current.token, PASSWORD, OTHER_PASSWORD, terminal=world.terminal, client_addr=ADDR
    )
    assert not changed.password_change_required
    with pytest.raises(SessionRejectedError):  # other sessions end on a credential change
        world.login.sessions.validate(elsewhere.token, terminal=world.terminal)
    with pytest.raises(LoginFailedError):
        world.login.begin_login(world.terminal, "yamada", PASSWORD, ADDR)
    assert entries(world, "password.change")[-1].details == {"other_sessions_ended": 1}


def test_a_forced_change_cannot_keep_the_one_time_password(world: AccessWorld) -> None:
    """Issue 9, item 9: the new password must differ from the current one and the last few."""
    _, card = card_user(world)
    with world.session() as session:
        session.execute(select(PasswordRecord)).scalar_one().must_change = True
        session.commit()
    current = card_login(world, "yamada", card)
    with pytest.raises(WeakPasswordError) as refused:
        world.login.change_password(
            current.token, PASSWORD, PASSWORD, terminal=world.terminal, client_addr=ADDR
        )
    assert refused.value.reason == "reused"
    assert entries(world, "password.change")[-1].reason == "weak_password:reused"
    again = card_login(world, "yamada", card)
    assert again.password_change_required  # the refused change left the demand in place
    world.login.change_password(
        again.token, PASSWORD, OTHER_PASSWORD, terminal=world.terminal, client_addr=ADDR
    )
    with pytest.raises(LoginFailedError):  # the one-time password no longer logs in
        world.login.begin_login(world.terminal, "yamada", PASSWORD, ADDR)
    assert not card_login_with(world, card, OTHER_PASSWORD).password_change_required


def test_the_last_few_passwords_cannot_come_back(world: AccessWorld) -> None:
    _, card = card_user(world)
    used = [PASSWORD] + [f"a fresh passphrase no {n} {'xyzw'[n % 4]}" for n in range(HISTORY_SIZE + 1)]
    for old, new in itertools.pairwise(used):
        login = card_login_with(world, card, old)
        world.login.change_password(login.token, old, new, terminal=world.terminal, client_addr=ADDR)
    latest = used[-1]
    for old in used[-HISTORY_SIZE - 1 : -1]:
        login = card_login_with(world, card, latest)
        with pytest.raises(WeakPasswordError) as refused:
            world.login.change_password(login.token, latest, old, terminal=world.terminal, client_addr=ADDR)
        assert refused.value.reason == "reused"
    login = card_login_with(world, card, latest)  # the oldest has left the short history
    world.login.change_password(login.token, latest, used[0], terminal=world.terminal, client_addr=ADDR)
    with world.session() as session:
        kept = session.scalars(select(PasswordHistoryRecord)).all()
    assert len(kept) == HISTORY_SIZE


def test_an_admin_reset_keeps_the_replaced_hash_in_the_history(world: AccessWorld) -> None:
    user, card = card_user(world)
    with world.session() as session:
        stored = session.get(User, user.id)
        assert stored is not None
        set_password(
            session,
            stored,
            OTHER_PASSWORD,
            passwords=world.login.passwords,
            changed_by="admin",
            must_change=True,
        )
        session.commit()
    login = card_login_with(world, card, OTHER_PASSWORD)
    with pytest.raises(WeakPasswordError):  # neither the one-time password nor the one before it
        world.login.change_password(
            login.token, OTHER_PASSWORD, PASSWORD, terminal=world.terminal, client_addr=ADDR
        )


def card_login_with(world: AccessWorld, card: SoftwareAuthenticator, password: str) -> LoginSession:
    pending = world.login.begin_login(world.terminal, "yamada", password, ADDR)
    assert pending.card_options_json is not None
    return world.login.finish_login_with_card(
        pending, card.get(pending.card_options_json), terminal=world.terminal
    )


# --- the audit trail ----------------------------------------------------------------------------------------


def test_every_attempt_is_audited_and_no_secret_reaches_the_log(db_world: AccessWorld) -> None:
    world = db_world
    user = world.add_user("sato", PASSWORD)
    secret = world.enroll_totp(user)
    ticket_user = world.add_user("kato", PASSWORD)
    ticket = world.card_ticket(ticket_user)
    before = len(world.audit_entries())
    code = current_code(secret, world.clock.now())
    secrets_seen = [PASSWORD, PASSWORD.lower(), code, ticket, secret]

    pending = world.login.begin_login(world.terminal, "sato", PASSWORD, ADDR)  # 1
    secrets_seen.append(pending.token)
    session = world.login.finish_login_with_totp(pending, code, terminal=world.terminal)  # 2
    secrets_seen += [session.token, session.csrf_token]
    fail(world, "sato")  # 3
    fail(world, PASSWORD)  # 4: a password typed into the id field
    with pytest.raises(TerminalNotRegisteredError):  # 5
        world.login.begin_login(None, "sato", PASSWORD, ADDR)
    start = world.login.begin_card_enrollment(world.terminal, "kato", PASSWORD, ticket, ADDR)  # 6
    secrets_seen.append(start.handle)
    world.login.finish_card_enrollment(  # 7
        start.handle,
        SoftwareAuthenticator().create(start.options_json),
        terminal=world.terminal,
        client_addr=ADDR,
    )
    world.login.logout(session.token, terminal=world.terminal, client_addr=ADDR)  # 8

    logged = world.audit_entries()
    assert len(logged) - before == 8
    text = json.dumps([e.fields() for e in logged], ensure_ascii=False, default=str)
    for value in secrets_seen:
        assert value not in text, value
    assert logged[before + 3].actor == "unknown"
    assert world.audit.verify().ok


def test_control_characters_in_the_typed_id_stay_out_of_the_log(world: AccessWorld) -> None:
    fail(world, "evil\r\nseq 0 admin login.password ok")
    assert entries(world)[-1].actor == "unknown"
    assert world.audit.verify().ok


# --- admin CLI: departments and users -----------------------------------------------------------------------


@pytest.fixture
def cli(tmp_path: Path) -> tuple[typer.Typer, Path]:
    app = typer.Typer()
    register(app)
    return app, make_hub_home(tmp_path / "hub")


def run(cli: tuple[typer.Typer, Path], *args: str, stdin: str | None = None) -> tuple[int, str]:
    app, home = cli
    result = CliRunner().invoke(app, [*args, "--home", str(home)], input=stdin)
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def test_cli_designates_users_with_an_initial_password(cli: tuple[typer.Typer, Path]) -> None:
    assert run(cli, "dept", "add", "政策調査課")[0] == 0
    assert run(cli, "dept", "add", "政策調査課")[0] == 2
    code, output = run(
        cli, "user", "add", "yamada", "--name", "山田 太郎", "--role", "analyst", "--dept", "政策調査課", "--password-stdin",
        stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert code == 0, output
    code, output = run(cli, "user", "add", "sato", "--name", "佐藤", "--role", "steward", "--dept", "政策調査課",
                       stdin=OTHER_PASSWORD + "\n" + OTHER_PASSWORD + "\n")  # fmt: skip
    assert code == 0, output
    code, output = run(cli, "user", "list")
    assert "yamada" in output and "sato" in output and "なし" in output
    code, output = run(cli, "dept", "list")
    assert "政策調査課" in output and "2" in output


def test_cli_refuses_bad_input_with_a_message_not_a_traceback(cli: tuple[typer.Typer, Path]) -> None:
    run(cli, "dept", "add", "税務課")
    weak = run(cli, "user", "add", "kato", "--name", "加藤", "--role", "analyst", "--dept", "税務課", "--password-stdin",
               stdin="password1234\n")  # fmt: skip
    assert weak[0] == 2 and "よく使われる" in weak[1]
    assert (
        run(cli, "user", "add", "Bad Id", "--name", "x", "--role", "analyst", "--dept", "税務課", stdin="")[0]
        == 2
    )
    assert run(cli, "user", "add", "kato", "--name", "加藤", "--role", "analyst", "--dept", "なし課",
               "--password-stdin", stdin=PASSWORD + "\n")[0] == 2  # fmt: skip
    assert run(cli, "user", "disable", "nobody")[0] == 2
    assert run(cli, "user", "card-ticket", "nobody")[0] == 2


def test_cli_tickets_totp_and_password_reset_are_audited(cli: tuple[typer.Typer, Path]) -> None:
    run(cli, "dept", "add", "税務課")
    run(cli, "user", "add", "kato", "--name", "加藤", "--role", "analyst", "--dept", "税務課", "--password-stdin",
        stdin=PASSWORD + "\n")  # fmt: skip
    code, output = run(cli, "user", "card-ticket", "kato")
    assert code == 0 and "有効期限" in output
    code, output = run(cli, "user", "totp-enroll", "kato")
    assert code == 0 and "otpauth://totp/renkei:kato?secret=" in output
    uri = next(word for word in output.split() if word.startswith("otpauth://"))
    assert run(cli, "user", "set-password", "kato", "--password-stdin", stdin=OTHER_PASSWORD + "\n")[0] == 0
    assert run(cli, "user", "card-revoke", "kato")[0] == 0
    _, home = cli
    hub = Hub(home)
    with hub.session() as session:
        logged = list(session.scalars(select(AuditEntry).order_by(AuditEntry.seq)))
        record = session.scalars(select(PasswordRecord)).one()
    actions = [e.action for e in logged]
    assert {"admin.dept_add", "admin.user_add", "admin.card_ticket", "admin.totp_enroll"} <= set(actions)
    assert {"admin.user_set_password", "admin.card_revoke"} <= set(actions)
    assert all(e.actor.startswith("cli:") for e in logged if e.action.startswith("admin."))
    assert record.must_change  # the user replaces an admin's password at the next login
    text = json.dumps([e.fields() for e in logged], ensure_ascii=False, default=str)
    assert PASSWORD not in text and OTHER_PASSWORD not in text and uri.split("secret=")[1][:16] not in text
    assert hub.audit.verify().ok


def test_a_kek_rotation_rewraps_the_totp_secrets(cli: tuple[typer.Typer, Path]) -> None:
    run(cli, "dept", "add", "税務課")
    run(cli, "user", "add", "kato", "--name", "加藤", "--role", "analyst", "--dept", "税務課", "--password-stdin",
        stdin=PASSWORD + "\n")  # fmt: skip
    _, output = run(cli, "user", "totp-enroll", "kato")
    secret = next(w for w in output.split() if w.startswith("otpauth://")).split("secret=")[1].split("&")[0]
    _, home = cli
    before = Hub(home)
    old_kek_id = before.kek.key_id
    assert rotate_kek(before, actor="test") == Rewrapped(data_keys=0, totp_secrets=1)
    after = Hub(home)
    with after.session() as session:
        record = session.scalars(select(TotpSecret)).one()
        assert json.loads(record.wrapped_secret)["kek_id"] == after.kek.key_id != old_kek_id
        code = current_code(secret, dt.datetime.now(dt.UTC))
        assert verify_totp(session, record.user_id, code, kek=after.kek)
    assert rotate_kek(after, actor="test") == Rewrapped(
        data_keys=0, totp_secrets=1
    )  # each rotation moves it on


def test_every_cli_command_has_japanese_help_first(cli: tuple[typer.Typer, Path]) -> None:
    app, _ = cli
    commands = [
        ("dept", "add"), ("dept", "list"), ("user", "add"), ("user", "disable"), ("user", "list"),
        ("user", "set-password"), ("user", "card-ticket"), ("user", "card-revoke"), ("user", "totp-enroll"),
        ("terminal", "enroll"), ("terminal", "revoke"), ("terminal", "list"),
    ]  # fmt: skip
    for group, command in commands:
        result = CliRunner().invoke(app, [group, command, "--help"], terminal_width=200)
        assert result.exit_code == 0, result.output
        lines = [line.strip() for line in result.output.splitlines() if line.strip()]
        description = lines[next(i for i, line in enumerate(lines) if line.startswith("Usage:")) + 1]
        assert not description[0].isascii(), (group, command, description)
