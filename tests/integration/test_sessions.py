"""Sessions: idle and absolute timeouts, logout, disabled users, revoked terminals (checklist rows 7 and 13)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from sqlalchemy import event, select
from typer.testing import CliRunner

from renkei.cli.access import register
from renkei.hub.access.people import User
from renkei.hub.access.sessions import (
    ABSOLUTE_TIMEOUT,
    IDLE_TIMEOUT,
    TOUCH_INTERVAL,
    LoginSession,
    SessionRecord,
    SessionRejectedError,
    SessionStore,
    token_digest,
    write_transaction,
)
from renkei.hub.access.terminals import Terminal, registered_terminal, revoke_terminal
from renkei.hub.audit import AuditEntry
from renkei.hub.db import session_factory
from renkei.hub.home import Hub
from renkei.hub.settings import load_settings
from tests.support import ADDR, AccessWorld, access_world, make_hub_home

PASSWORD = "a long enough passphrase"


@pytest.fixture
def db_world(database_url: str, tmp_path: Path) -> Iterator[AccessWorld]:
    """SQLite and PostgreSQL: the timeout comparisons run in SQL, where the two store time differently."""
    with access_world(database_url, tmp_path) as built:
        yield built


@pytest.fixture
def world(tmp_path: Path) -> Iterator[AccessWorld]:
    with access_world(f"sqlite:///{tmp_path / 'catalog.db'}", tmp_path) as built:
        yield built


def open_session(world: AccessWorld, login_id: str = "yamada", replaces: str | None = None) -> LoginSession:
    with world.session() as session:
        user = session.scalar(select(User).where(User.login_id == login_id))
        if user is None:
            session.close()
            world.add_user(login_id, PASSWORD)
            return open_session(world, login_id, replaces)
        terminal = session.get(Terminal, world.terminal.id)
        assert terminal is not None
        created = world.login.sessions.create_in(
            session, user=user, terminal=terminal, client_addr=ADDR, replaces=replaces
        )
        session.commit()
    return created


def rejected(world: AccessWorld, token: str, terminal: Terminal | None = None) -> str:
    with pytest.raises(SessionRejectedError) as caught:
        world.login.sessions.validate(token, terminal=terminal or world.terminal)
    return caught.value.reason


def test_tokens_are_random_256_bit_and_only_their_hash_is_stored(world: AccessWorld) -> None:
    first, second = open_session(world), open_session(world)
    assert first.token != second.token and len(first.token) == 43  # 32 bytes, base64url
    assert first.csrf_token != second.csrf_token
    with world.session() as session:
        rows = session.scalars(select(SessionRecord)).all()
    stored = {value for row in rows for value in (row.token_sha256, row.csrf_token)}
    assert first.token not in stored and token_digest(first.token) in stored


def test_idle_timeout_restarts_with_each_request(db_world: AccessWorld) -> None:
    world = db_world
    session = open_session(world)
    for _ in range(4):
        world.clock.advance(minutes=29)
        world.login.sessions.validate(session.token, terminal=world.terminal)
    world.clock.advance(seconds=IDLE_TIMEOUT.total_seconds() + 1)
    assert rejected(world, session.token) == "idle_timeout"
    assert rejected(world, session.token) == "unknown"  # a rejected session is gone for good


def last_seen(world: AccessWorld, session: LoginSession) -> object:
    with world.session() as db:
        record = db.get(SessionRecord, session.id)
        assert record is not None
        return record.last_seen_at


def test_requests_within_the_touch_interval_only_read(db_world: AccessWorld) -> None:
    """The idle clock restarts at most every TOUCH_INTERVAL (a write); a session never lives longer for it."""
    world = db_world
    session = open_session(world)
    opened = last_seen(world, session)
    world.clock.advance(seconds=TOUCH_INTERVAL.total_seconds() - 1)
    world.login.sessions.validate(session.token, terminal=world.terminal)
    assert last_seen(world, session) == opened  # read only
    world.clock.advance(seconds=2)
    world.login.sessions.validate(session.token, terminal=world.terminal)
    touched = last_seen(world, session)
    assert touched != opened  # restarted
    world.clock.advance(seconds=IDLE_TIMEOUT.total_seconds() - 1)
    world.login.sessions.validate(session.token, terminal=world.terminal)  # restarts again (older than 30 s)
    world.clock.advance(seconds=IDLE_TIMEOUT.total_seconds() + 1)
    assert rejected(world, session.token) == "idle_timeout"


def test_a_refused_session_is_refused_on_the_read_path_too(world: AccessWorld) -> None:
    session = open_session(world)
    with world.session() as db:
        user = db.scalar(select(User).where(User.login_id == "yamada"))
        assert user is not None
        user.disabled = True
        db.commit()
    assert rejected(world, session.token) == "user_disabled"  # within the touch interval: still refused


def test_the_hubs_settings_set_the_timeouts(world: AccessWorld) -> None:
    """sessions.* from hub.toml reach the store the portal builds (renkei.web.app passes hub.settings)."""
    timeouts = load_settings(None, {"RENKEI_SESSIONS_IDLE_TIMEOUT_MINUTES": "5"}).sessions
    store = SessionStore(session_factory(world.engine), world.clock, timeouts)
    session = open_session(world)
    world.clock.advance(minutes=4)
    store.validate(session.token, terminal=world.terminal)
    world.clock.advance(minutes=5, seconds=1)
    with pytest.raises(SessionRejectedError) as caught:
        store.validate(session.token, terminal=world.terminal)
    assert caught.value.reason == "idle_timeout"  # the built-in 30 minutes would still be running


def test_absolute_timeout_ends_even_an_active_session(db_world: AccessWorld) -> None:
    world = db_world
    session = open_session(world)
    elapsed = 0.0
    while elapsed + 20 * 60 < ABSOLUTE_TIMEOUT.total_seconds():
        world.clock.advance(minutes=20)
        elapsed += 20 * 60
        world.login.sessions.validate(session.token, terminal=world.terminal)
    world.clock.advance(seconds=ABSOLUTE_TIMEOUT.total_seconds() - elapsed)
    assert rejected(world, session.token) == "absolute_timeout"


def test_logout_deletes_the_session(db_world: AccessWorld) -> None:
    world = db_world
    session = open_session(world)
    assert world.login.sessions.logout(session.token)
    assert rejected(world, session.token) == "unknown"
    assert not world.login.sessions.logout(session.token)


def test_disabling_a_user_ends_their_sessions_on_the_next_request(db_world: AccessWorld) -> None:
    world = db_world
    session = open_session(world)
    with world.session() as db:
        db.execute(select(User).where(User.login_id == "yamada")).scalar_one().disabled = True
        db.commit()
    assert rejected(world, session.token) == "user_disabled"


def test_end_all_for_user(world: AccessWorld) -> None:
    sessions = [open_session(world), open_session(world)]
    other = open_session(world, "sato")
    assert world.login.sessions.end_all_for_user(sessions[0].user_id) == 2
    assert {rejected(world, s.token) for s in sessions} == {"unknown"}
    world.login.sessions.validate(other.token, terminal=world.terminal)


def test_a_revoked_terminal_ends_its_sessions_on_the_next_request(db_world: AccessWorld) -> None:
    world = db_world
    session = open_session(world)
    with world.session() as db:
        revoke_terminal(db, "term-01", revoked_by="test", clock=world.clock)
        db.commit()
    assert rejected(world, session.token) == "terminal_revoked"


def test_a_token_used_from_another_terminal_is_refused_and_destroyed(world: AccessWorld) -> None:
    session = open_session(world)
    other, _ = world.add_terminal("term-02")
    assert rejected(world, session.token, other) == "terminal_mismatch"
    assert rejected(world, session.token) == "unknown"
    with pytest.raises(SessionRejectedError):
        world.login.sessions.validate(open_session(world).token, terminal=None)


def test_replacing_a_token_rotates_it(world: AccessWorld) -> None:
    before = open_session(world)
    after = open_session(world, replaces=before.token)
    assert rejected(world, before.token) == "unknown"
    assert world.login.sessions.validate(after.token, terminal=world.terminal).id == after.id


def test_garbage_tokens_are_refused(world: AccessWorld) -> None:
    for token in ("", "x" * 10_000, "not-a-token", "\x00\ud800"):
        assert rejected(world, token) == "unknown"


def test_csrf_token_is_compared_in_constant_time_and_exactly(world: AccessWorld) -> None:
    session = world.login.sessions.validate(open_session(world).token, terminal=world.terminal)
    assert session.csrf_ok(session.csrf_token)
    assert not session.csrf_ok(session.csrf_token[:-1] + "A" if session.csrf_token[-1] != "A" else "B")
    assert not session.csrf_ok("")
    assert not session.csrf_ok(None)
    assert not session.csrf_ok("日本語")
    assert session.token not in repr(session) and session.csrf_token not in repr(session)


def test_write_transaction_rolls_back_on_error(world: AccessWorld) -> None:
    factory = session_factory(world.engine)
    with pytest.raises(RuntimeError), write_transaction(factory) as db:
        db.add(SessionRecord(token_sha256="0" * 64, user_id=1, terminal_id=1, client_addr="", csrf_token="x"))
        raise RuntimeError
    with world.session() as db:
        assert db.scalars(select(SessionRecord)).all() == []


# --- admin CLI: disabling a user ends their sessions at once -------------------------------------------------


def test_cli_disable_ends_sessions_at_once(tmp_path: Path) -> None:
    app = typer.Typer()
    register(app)
    home = make_hub_home(tmp_path / "hub")
    runner = CliRunner()

    def run(*args: str, stdin: str | None = None) -> str:
        result = runner.invoke(app, [*args, "--home", str(home)], input=stdin)
        assert result.exit_code == 0, result.output
        return result.output

    run("dept", "add", "政策調査課")
    run(
        "user",
        "add",
        "yamada",
        "--name",
        "山田",
        "--role",
        "analyst",
        "--dept",
        "政策調査課",
        "--password-stdin",
        stdin=PASSWORD,
    )
    run("terminal", "enroll", "term-01", "--out", str(tmp_path / "term"))
    hub = Hub(home)
    store = SessionStore(session_factory(hub.engine))
    with hub.session() as db:
        user = db.execute(select(User)).scalar_one()
        terminal = db.execute(select(Terminal)).scalar_one()
        token = store.create_in(db, user=user, terminal=terminal, client_addr=ADDR).token
        db.commit()

    output = run("user", "disable", "yamada")

    assert "1" in output
    with pytest.raises(SessionRejectedError):
        store.validate(token, terminal=terminal)
    with hub.session() as db:
        entry = db.scalars(select(AuditEntry).where(AuditEntry.action == "admin.user_disable")).one()
    assert entry.details == {"sessions_ended": 1} and entry.actor.startswith("cli:")
    hub.engine.dispose()


def read_then_validate(world: AccessWorld, token: str, terminal: Terminal | None = None) -> LoginSession:
    """What the portal does per request: one read of the session row, then the decision on that row."""
    with world.session() as db:
        row = world.login.sessions.read_in(db, token)
    return world.login.sessions.validate(token, terminal=terminal or world.terminal, read=row)


def rejected_after_read(world: AccessWorld, token: str, terminal: Terminal | None = None) -> str:
    with pytest.raises(SessionRejectedError) as caught:
        read_then_validate(world, token, terminal)
    return caught.value.reason


def test_a_row_read_in_the_request_decides_as_strictly(world: AccessWorld) -> None:
    """Each refusal holds when the portal hands validate() the row it read with the terminal (one statement)."""
    session = open_session(world)
    assert read_then_validate(world, session.token).id == session.id
    other, _ = world.add_terminal("term-02")
    assert rejected_after_read(world, open_session(world).token, other) == "terminal_mismatch"
    disabled = open_session(world, "sato")
    with world.session() as db:
        db.execute(select(User).where(User.login_id == "sato")).scalar_one().disabled = True
        db.commit()
    assert rejected_after_read(world, disabled.token) == "user_disabled"
    assert rejected_after_read(world, disabled.token) == "unknown"  # deleted by the refusal
    with world.session() as db:
        revoke_terminal(db, "term-01", revoked_by="test", clock=world.clock)
        db.commit()
    assert rejected_after_read(world, session.token) == "terminal_revoked"
    assert rejected_after_read(world, "x" * 43) == "unknown"


def test_a_row_read_in_the_request_still_times_out(world: AccessWorld) -> None:
    idle = open_session(world)
    world.clock.advance(seconds=IDLE_TIMEOUT.total_seconds() + 1)
    assert rejected_after_read(world, idle.token) == "idle_timeout"
    active = open_session(world)
    elapsed = 0.0
    while elapsed + 20 * 60 < ABSOLUTE_TIMEOUT.total_seconds():
        world.clock.advance(minutes=20)
        elapsed += 20 * 60
        read_then_validate(world, active.token)  # restarts the idle clock: a write when older than 30 s
    world.clock.advance(seconds=ABSOLUTE_TIMEOUT.total_seconds() - elapsed)
    assert rejected_after_read(world, active.token) == "absolute_timeout"


def test_the_session_rows_terminal_stands_in_only_for_its_own_certificate(world: AccessWorld) -> None:
    """registered_terminal(candidate=…) skips its query only when the certificate is the candidate's."""
    other, other_der = world.add_terminal("term-02")
    session = open_session(world)
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(world.engine, "before_cursor_execute", count)
    try:
        with world.session() as db:
            row = world.login.sessions.read_in(db, session.token)
            assert row is not None and row.terminal.name == "term-01"
            ca = world.ca.certificate
            own = registered_terminal(
                db, world.terminal_cert_der, ca_certificate=ca, clock=world.clock, candidate=row.terminal
            )
            assert own is row.terminal and len(statements) == 1  # one statement for both checks
            named = registered_terminal(
                db, other_der, ca_certificate=ca, clock=world.clock, candidate=row.terminal
            )
            assert named is not None and named.id == other.id and len(statements) == 2  # looked up: term-02's
            assert (
                registered_terminal(db, b"junk", ca_certificate=ca, clock=world.clock, candidate=row.terminal)
                is None
            )
    finally:
        event.remove(world.engine, "before_cursor_execute", count)
