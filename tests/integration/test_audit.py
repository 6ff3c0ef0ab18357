"""The audit log on SQLite and PostgreSQL: appends, checkpoints, tampering, concurrency, input rules."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, Table, delete, insert, select, text, update
from sqlalchemy.orm import Session
from typer.testing import CliRunner, Result

from renkei.cli.main import app as main_app
from renkei.errors import KeyFileError
from renkei.hub import merkle
from renkei.hub.audit import (
    AUDIT_KEY_FILE,
    CHECKPOINT_COPY_FILE,
    MAX_UNSIGNED_AGE,
    AuditEntry,
    AuditError,
    AuditLog,
    Checkpoint,
    Problem,
    canonical_json,
    create_audit_key,
    entry_leaf_hash,
    is_secret_name,
    key_id,
    load_audit_key,
    load_public_key,
    public_key_pem,
    read_checkpoint_copies,
    render_tail,
    tail_rows,
)
from renkei.hub.audit_actions import AuditAction
from renkei.hub.db import Base, make_engine
from renkei.hub.home import init_hub

ENTRIES = cast(Table, AuditEntry.__table__)
SIZE = 25
EVERY = 10


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def log(engine: Engine, signing_key: Ed25519PrivateKey) -> AuditLog:
    return AuditLog(engine, signing_key, checkpoint_every=EVERY)


@pytest.fixture
def sqlite_log(tmp_path: Path) -> Iterator[AuditLog]:
    """For checks that refuse an entry before any database work: one backend is enough."""
    engine = make_engine(f"sqlite:///{tmp_path / 'catalog.db'}")
    Base.metadata.create_all(engine)
    yield AuditLog(engine)
    engine.dispose()


def fill(log: AuditLog, engine: Engine, n: int = SIZE) -> None:
    """n entries in one transaction (append_in), so that the tamper tests stay fast."""
    with Session(engine) as session:
        for i in range(n):
            log.append_in(
                session,
                actor=f"user{i % 3}",
                action=AuditAction.WORKSPACE_QUERY,
                resource=f"juki/2024-01-01/v{i}",
                result="allowed",
                details={"rows": i * 100, "dataset": "juki"},
            )
        session.commit()


def sql(engine: Engine, *statements: str, **params: Any) -> None:
    """Run statements in one transaction, as a DBA at the SQL prompt would."""
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement), params)


def row(engine: Engine, seq: int) -> dict[str, Any]:
    with engine.connect() as conn:
        return dict(conn.execute(select(ENTRIES).where(ENTRIES.c.seq == seq)).mappings().one())


def renumber(engine: Engine, from_seq: int, delta: int) -> None:
    """Shift seq of every entry >= from_seq by delta, in two steps so the primary key never collides."""
    sql(engine, "UPDATE audit_entries SET seq = -seq - 1 WHERE seq >= :s", s=from_seq)
    sql(engine, "UPDATE audit_entries SET seq = -seq - 1 + :d WHERE seq < 0", d=delta)


def forged(engine: Engine, seq: int) -> None:
    """Insert a forged entry whose leaf hash is correct for its own fields, as an informed attacker would."""
    values = row(engine, 0) | {"seq": seq, "actor": "mallory", "action": "export"}
    values["leaf_hash"] = entry_leaf_hash(values).hex()
    with engine.begin() as conn:
        conn.execute(insert(ENTRIES).values(values))


def rehash_everything(engine: Engine) -> None:
    """The attacker's cover-up: recompute every leaf hash and the head (but cannot re-sign checkpoints)."""
    with engine.begin() as conn:
        rows = [dict(r) for r in conn.execute(select(ENTRIES).order_by(ENTRIES.c.seq)).mappings()]
        frontier = merkle.Frontier()
        for r in rows:
            leaf = entry_leaf_hash(r)
            conn.execute(update(ENTRIES).where(ENTRIES.c.seq == r["seq"]).values(leaf_hash=leaf.hex()))
            frontier.append(leaf)
        conn.execute(
            text("UPDATE audit_head SET size = :n, frontier = :f"),
            {"n": frontier.size, "f": frontier.to_hex()},
        )


# --- appending ----------------------------------------------------------------------------------------------


def test_appends_are_gap_free_hashed_and_verify(log: AuditLog, engine: Engine) -> None:
    first = log.append(
        actor="importer", action=AuditAction.IMPORT, resource="juki/2024-01-01/v1", details={"rows": 10}
    )
    second = log.append(
        actor="alice", action=AuditAction.AUTHZ_DECISION, result="denied", reason="no approval"
    )
    assert (first.seq, second.seq) == (0, 1)
    assert first.at.tzinfo is not None and first.at <= second.at
    expected = hashlib.sha256(b"\x00" + canonical_json(first.fields())).hexdigest()
    assert first.leaf_hash == expected == row(engine, 0)["leaf_hash"]
    report = log.verify()
    assert report.ok and report.size == 2 and report.problem is None
    assert (
        report.root_hex
        == merkle.root([bytes.fromhex(first.leaf_hash), bytes.fromhex(second.leaf_hash)]).hex()
    )
    assert "正常" in report.message_ja


def test_canonical_json_is_sorted_compact_utf8_with_every_field(log: AuditLog) -> None:
    entry = log.append(
        actor="山田", action=AuditAction.EXPORT_FILE, resource="juki", details={"b": 1, "a": [True, None]}
    )
    doc = canonical_json(entry.fields()).decode("utf-8")
    assert doc.startswith('{"action":"export.file","actor":"山田","at":"') and " " not in doc
    hashed = [
        "seq",
        "at",
        "actor",
        "terminal",
        "client_addr",
        "action",
        "resource",
        "result",
        "reason",
        "details",
    ]
    assert list(json.loads(doc)) == sorted(hashed)
    assert '"details":{"a":[true,null],"b":1}' in doc


def test_empty_log_verifies(log: AuditLog) -> None:
    report = log.verify()
    assert report.ok and report.size == 0 and report.root_hex == merkle.EMPTY_ROOT.hex()


def test_append_in_commits_and_rolls_back_with_the_callers_transaction(log: AuditLog, engine: Engine) -> None:
    with Session(engine) as session:
        log.append_in(session, actor="importer", action=AuditAction.IMPORT, resource="juki/2024-01-01/v1")
        session.rollback()
    assert log.tail() == [] and log.size() == 0
    with Session(engine) as session:
        entry = log.append_in(
            session, actor="importer", action=AuditAction.IMPORT, resource="juki/2024-01-01/v1"
        )
        session.commit()
    assert entry.seq == 0 and [e.seq for e in log.tail()] == [0]
    assert log.append(actor="x", action=AuditAction.LOGIN_PASSWORD).seq == 1
    assert log.verify().ok


def test_tail_and_rendering_neutralise_control_characters(log: AuditLog) -> None:
    for i in range(5):
        log.append(actor=f"u{i}", action=AuditAction.LOGIN_PASSWORD)
    log.append(
        actor="eve\n0 2024-01-01 admin login ok",
        action=AuditAction.LOGIN_PASSWORD,
        result="denied",
        reason="bad\x1b[31m\u202e",
    )
    tail = log.tail(3)
    assert [e.seq for e in tail] == [3, 4, 5]
    assert tail[-1].actor == "eve\n0 2024-01-01 admin login ok"  # stored as it came
    rendered = render_tail(tail, max_width=200)
    assert len(rendered.splitlines()) == 4  # header + 3 entries: the newline did not make a fake entry
    assert "eve\\x0a0 2024" in rendered and "\\x1b[31m\\u202e" in rendered
    assert tail_rows(tail)[0][:3] == ("3", tail[0].at.strftime("%Y-%m-%d %H:%M:%S"), "u3")


def test_nul_and_lone_surrogates_are_stored_as_replacement_characters(log: AuditLog) -> None:
    entry = log.append(
        actor="a\x00b", action=AuditAction.LOGIN_PASSWORD, reason="\ud800", details={"note": "x\x00"}
    )
    assert (entry.actor, entry.reason, entry.details["note"]) == ("a\ufffdb", "\ufffd", "x\ufffd")
    assert log.tail(1)[0].fields() == entry.fields()
    assert log.verify().ok


# --- what may go into an entry ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["password", "new_password", "api_key", "apiKey", "key", "sessionToken", "client_secret", "kek", "pin",
     "Authorization", "private_keys", "refresh-token"],
)  # fmt: skip
def test_secret_like_detail_keys_are_refused(sqlite_log: AuditLog, name: str) -> None:
    assert is_secret_name(name)
    with pytest.raises(AuditError, match="looks like a secret"):
        sqlite_log.append(actor="admin", action=AuditAction.ADMIN_USER_ADD, details={name: "x"})
    with pytest.raises(AuditError, match="looks like a secret"):
        sqlite_log.append(actor="admin", action=AuditAction.ADMIN_USER_ADD, details={"nested": [{name: "x"}]})
    assert sqlite_log.size() == 0


@pytest.mark.parametrize(
    "name",
    ["kek_id", "key_id", "keyId", "old_kek_id", "key_fingerprint", "token_count", "rows", "keyword_hits"],
)
def test_identifiers_of_keys_are_allowed(sqlite_log: AuditLog, name: str) -> None:
    assert not is_secret_name(name)
    entry = sqlite_log.append(actor="admin", action=AuditAction.VAULT_ROTATE_KEY, details={name: "abc"})
    assert entry.details == {name: "abc"}


@pytest.mark.parametrize(
    ("details", "message"),
    [
        ({"sql": "x" * 513}, "exceeds 512"),
        ({"cert": "-----BEGIN PRIVATE KEY-----"}, "PEM"),
        ({"rate": float("nan")}, "non-finite"),
        ({1: "x"}, "invalid details key"),
        ({"bad key": "x"}, "invalid details key"),
        ({"blob": b"raw"}, "has type bytes"),
        ({"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}}, "nested too deeply"),
        ({f"k{i}": "x" * 500 for i in range(20)}, "too large"),
    ],
)
def test_details_must_be_small_plain_metadata(
    sqlite_log: AuditLog, details: dict[Any, Any], message: str
) -> None:
    with pytest.raises(AuditError, match=message):
        sqlite_log.append(actor="admin", action=AuditAction.EXPORT_FILE, details=details)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"actor": ""}, "actor is empty"),
        ({"action": "Export now"}, "invalid audit action"),
        ({"result": "maybe"}, "invalid audit result"),
        ({"resource": "r" * 513}, "resource exceeds 512"),
        ({"reason": "r" * 1025}, "reason exceeds 1024"),
    ],
)
def test_entry_fields_are_checked(sqlite_log: AuditLog, fields: dict[str, Any], message: str) -> None:
    with pytest.raises(AuditError, match=message):
        sqlite_log.append(**({"actor": "a", "action": AuditAction.LOGIN_PASSWORD} | fields))


@given(
    st.lists(st.text(), min_size=5, max_size=5),
    st.dictionaries(st.from_regex(r"[a-z_]{1,10}", fullmatch=True), st.text(max_size=20), max_size=3),
)
def test_canonical_json_keeps_any_text_on_one_line_and_is_injective(
    texts: list[str], details: dict[str, str]
) -> None:
    """ASVS 16.4.1: whatever control or separator characters come in, one entry stays one line."""
    fields: dict[str, Any] = dict(
        zip(["actor", "terminal", "client_addr", "resource", "reason"], texts, strict=True)
    )
    fields |= {"seq": 7, "at": dt.datetime(2024, 1, 1, tzinfo=dt.UTC), "action": "login", "result": "ok"}
    fields["details"] = details
    doc = canonical_json(fields).decode("utf-8")
    assert len(doc.splitlines()) == 1 and "\n" not in doc
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 or c in "\u2028\u2029" for c in doc)
    back = json.loads(doc)
    assert (
        back["actor"] == fields["actor"] and back["details"] == details and back["reason"] == fields["reason"]
    )


# --- checkpoints and keys -----------------------------------------------------------------------------------


def test_checkpoints_every_n_and_on_demand(
    log: AuditLog, engine: Engine, signing_key: Ed25519PrivateKey
) -> None:
    fill(log, engine)
    with engine.connect() as conn:
        sizes = [s for (s,) in conn.execute(text("SELECT size FROM audit_checkpoints ORDER BY size"))]
    assert sizes == [10, 20]
    cp = log.checkpoint()
    assert cp.size == SIZE and cp.verify_signature(signing_key.public_key())
    assert cp.key_id == key_id(signing_key.public_key())
    assert cp.root_hex == merkle.root([bytes.fromhex(h) for h in leaf_hexes(engine)]).hex()
    report = log.verify(cp)
    assert report.ok and report.checkpoints_checked == 4 and report.warnings == ()


def leaf_hexes(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return [h for (h,) in conn.execute(select(ENTRIES.c.leaf_hash).order_by(ENTRIES.c.seq))]


def test_checkpoint_file_round_trip_and_tampering(log: AuditLog, engine: Engine, tmp_path: Path) -> None:
    fill(log, engine, 3)
    cp = log.checkpoint()
    path = cp.save(tmp_path / "cp.json")
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["format"] == "renkei-audit-checkpoint/v1" and doc["key_id"] == cp.key_id and doc["size"] == 3
    assert Checkpoint.load(path) == cp
    for field_, value in [("size", 2), ("root", "0" * 64), ("at", "2000-01-01T00:00:00.000000Z")]:
        tampered = Checkpoint.from_json(json.dumps(doc | {field_: value}))
        report = log.verify(tampered)
        assert report.problem is Problem.BAD_SIGNATURE, field_
    for bad in [
        "{}",
        "[]",
        "not json",
        json.dumps(doc | {"size": -1}),
        json.dumps(doc | {"signature": "zz"}),
    ]:
        with pytest.raises(AuditError, match="malformed audit checkpoint"):
            Checkpoint.from_json(bad)


def test_checkpoint_needs_the_signing_key(engine: Engine) -> None:
    with pytest.raises(AuditError, match="no audit signing key"):
        AuditLog(engine).checkpoint()


def test_an_auditor_with_only_the_public_key_can_verify(
    log: AuditLog, engine: Engine, signing_key: Ed25519PrivateKey
) -> None:
    fill(log, engine)
    cp = log.checkpoint()
    public = load_public_key(public_key_pem(signing_key))
    auditor = AuditLog(engine, trusted_keys=[public])
    assert auditor.verify(cp).ok
    stranger = AuditLog(engine, trusted_keys=[Ed25519PrivateKey.generate().public_key()])
    assert stranger.verify().problem is Problem.BAD_SIGNATURE
    unkeyed = AuditLog(engine).verify(cp)
    assert unkeyed.ok and any("not checked" in w for w in unkeyed.warnings)


def test_audit_key_file_is_private_never_overwritten_and_checked(tmp_path: Path) -> None:
    home = tmp_path / "hub"
    path = create_audit_key(home)
    assert path == home / AUDIT_KEY_FILE and stat.S_IMODE(path.stat().st_mode) == 0o600
    key = load_audit_key(home)
    before = path.read_bytes()
    with pytest.raises(KeyFileError, match="refusing to overwrite"):
        create_audit_key(home)
    assert path.read_bytes() == before
    assert load_public_key(public_key_pem(key)).public_bytes_raw() == key.public_key().public_bytes_raw()
    path.chmod(0o640)
    with pytest.raises(KeyFileError, match="chmod 600"):
        load_audit_key(home)
    path.chmod(0o600)
    path.write_text("garbage")
    with pytest.raises(KeyFileError, match="not an Ed25519"):
        load_audit_key(home)
    with pytest.raises(KeyFileError, match="hub init"):
        load_audit_key(tmp_path / "elsewhere")


def test_proofs_from_the_log_verify_against_checkpoints(log: AuditLog, engine: Engine) -> None:
    fill(log, engine, 7)
    old = log.checkpoint()
    fill(log, engine, 6)
    new = log.checkpoint()
    leaf = bytes.fromhex(row(engine, 4)["leaf_hash"])
    root_new = bytes.fromhex(new.root_hex)
    assert merkle.verify_inclusion(4, new.size, leaf, log.inclusion_proof(4, new.size), root_new)
    proof = log.consistency_proof(old.size, new.size)
    assert merkle.verify_consistency(old.size, new.size, proof, bytes.fromhex(old.root_hex), root_new)


# --- tamper detection (rows edited directly with SQL) -------------------------------------------------------

Tamper = Callable[[Engine], None]


def delete_and_renumber(engine: Engine) -> None:
    sql(engine, "DELETE FROM audit_entries WHERE seq = 12")
    renumber(engine, 13, -1)


def insert_in_the_middle(engine: Engine) -> None:
    renumber(engine, 12, 1)
    forged(engine, 12)


TAMPERING: dict[str, tuple[Tamper, Problem, int]] = {
    "update a field": (
        lambda e: sql(e, "UPDATE audit_entries SET actor = 'mallory' WHERE seq = 7"),
        Problem.MODIFIED,
        7,
    ),
    "update details": (
        lambda e: sql(e, "UPDATE audit_entries SET details = :d WHERE seq = 3", d='{"rows": 1}'),
        Problem.MODIFIED,
        3,
    ),
    "backdate an entry": (
        lambda e: sql(
            e, "UPDATE audit_entries SET at = :t WHERE seq = 8", t=dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
        ),
        Problem.MODIFIED,
        8,
    ),
    "update the stored hash": (
        lambda e: sql(e, "UPDATE audit_entries SET leaf_hash = :h WHERE seq = 0", h="0" * 64),
        Problem.MODIFIED,
        0,
    ),
    "delete a row": (lambda e: sql(e, "DELETE FROM audit_entries WHERE seq = 12"), Problem.DELETED, 12),
    "delete and renumber": (delete_and_renumber, Problem.DELETED, 12),
    "swap two rows' seq": (
        lambda e: sql(
            e,
            "UPDATE audit_entries SET seq = -1 WHERE seq = 5",
            "UPDATE audit_entries SET seq = 5 WHERE seq = 9",
            "UPDATE audit_entries SET seq = 9 WHERE seq = -1",
        ),
        Problem.REORDERED,
        5,
    ),
    "insert a forged row at the end": (lambda e: forged(e, SIZE), Problem.INSERTED, SIZE),
    "insert a forged row in the middle": (insert_in_the_middle, Problem.INSERTED, 12),
    "delete the tail": (lambda e: sql(e, "DELETE FROM audit_entries WHERE seq >= 20"), Problem.TRUNCATED, 20),
    "forge a checkpoint": (
        lambda e: sql(e, "UPDATE audit_checkpoints SET root_hex = :r WHERE size = 10", r="ab" * 32),
        Problem.BAD_SIGNATURE,
        -1,
    ),
}


@pytest.mark.parametrize("case", TAMPERING)
def test_tampering_is_detected_and_located(log: AuditLog, engine: Engine, case: str) -> None:
    tamper, problem, seq = TAMPERING[case]
    fill(log, engine)
    assert log.verify().ok
    tamper(engine)
    report = log.verify()
    assert not report.ok
    assert report.problem is problem, report.findings
    assert report.first_bad_seq == (None if seq < 0 else seq), report.findings
    assert report.message_ja and report.message_en


@pytest.mark.parametrize(
    ("column", "garbage"), [("details", "not json"), ("at", "yesterday"), ("seq", "x"), ("actor", 42)]
)
def test_garbled_values_are_reported_not_fatal(tmp_path: Path, column: str, garbage: object) -> None:
    """SQLite stores any value in any column; verify must report it, not crash on it."""
    engine = make_engine(f"sqlite:///{tmp_path / 'catalog.db'}")
    Base.metadata.create_all(engine)
    log = AuditLog(engine)
    fill(log, engine, 6)
    sql(engine, f"UPDATE audit_entries SET {column} = :g WHERE seq = 4", g=garbage)
    report = log.verify()
    assert (report.problem, report.first_bad_seq) in [(Problem.MODIFIED, 4), (Problem.DELETED, 4)]
    engine.dispose()


def test_a_consistent_rewrite_is_caught_by_the_signed_checkpoints(log: AuditLog, engine: Engine) -> None:
    fill(log, engine)
    sql(engine, "UPDATE audit_entries SET result = 'allowed', actor = 'alice' WHERE seq = 13")
    rehash_everything(engine)
    report = log.verify()
    first = report.first
    assert first is not None and first.problem is Problem.MODIFIED
    # Checkpoints at 10 (still matching) and 20 (no longer matching) pin it down to the entries between them.
    assert (first.seq, first.last_seq) == (10, 19)
    assert "between seq 10 and 19" in report.message_en


def test_only_an_external_checkpoint_catches_a_full_cover_up(log: AuditLog, engine: Engine) -> None:
    """Truncate, fix the head and delete the stored checkpoints: invisible inside, caught from outside."""
    fill(log, engine)
    kept = log.checkpoint()
    sql(engine, "DELETE FROM audit_entries WHERE seq >= 20")
    sql(engine, "DELETE FROM audit_checkpoints")
    rehash_everything(engine)
    assert log.verify().ok  # nothing inside the database contradicts the shortened log
    report = log.verify(kept)
    assert (report.problem, report.first_bad_seq) == (Problem.TRUNCATED, 20)
    sql(engine, "UPDATE audit_entries SET reason = 'edited' WHERE seq = 2")
    rehash_everything(engine)
    rewritten = log.verify(kept)
    assert rewritten.problem is Problem.TRUNCATED  # still the most certain finding
    fill(log, engine, 5)  # regrow past the kept size: now the rewrite itself shows
    regrown = log.verify(kept)
    assert regrown.problem is Problem.MODIFIED and regrown.first_bad_seq == 0


# --- verify_recent: the pages' verification, from the last full one on --------------------------------------


def test_verify_recent_checks_only_new_entries_and_says_so(log: AuditLog, engine: Engine) -> None:
    fill(log, engine)
    first = log.verify_recent()
    assert first.ok and not first.incremental and first.size == SIZE  # no base yet: a full verification
    fill(log, engine, 7)
    log.checkpoint()
    later = log.verify_recent()
    assert later.ok and later.incremental
    assert (later.full_size, later.size, later.covered) == (SIZE, SIZE + 7, SIZE + 7)
    assert later.root_hex == log.verify().root_hex  # the extended tree is the one a full verification builds


def test_verify_recent_finds_tampering_with_entries_it_has_not_verified(
    log: AuditLog, engine: Engine
) -> None:
    fill(log, engine)
    assert log.verify_recent().ok
    fill(log, engine, 5)
    sql(engine, "UPDATE audit_entries SET actor = 'mallory' WHERE seq = :s", s=SIZE + 2)
    report = log.verify_recent()  # the new entry does not verify: a full verification names it
    assert not report.ok and not report.incremental
    assert (report.problem, report.first_bad_seq) == (Problem.MODIFIED, SIZE + 2)


def test_tampering_with_a_verified_entry_is_found_by_the_full_verification(
    log: AuditLog, engine: Engine
) -> None:
    """The documented limit: an old entry changed after its verification passes verify_recent (which says
    since when it has verified only new entries) until the next full verification; `renkei audit verify`
    (a full :meth:`AuditLog.verify`) finds it at once."""
    fill(log, engine)
    assert log.verify_recent().ok
    sql(engine, "UPDATE audit_entries SET reason = 'edited' WHERE seq = 3")
    fill(log, engine, 2)
    recent = log.verify_recent()
    assert recent.ok and recent.incremental and recent.full_size == SIZE  # says: seq < 25 verified earlier
    full = log.verify()
    assert (full.problem, full.first_bad_seq) == (Problem.MODIFIED, 3)
    expired = log.verify_recent(max_age=dt.timedelta(0))  # the base is too old: a full verification
    assert not expired.ok and not expired.incremental and expired.first_bad_seq == 3
    assert not log.verify_recent().ok  # a log that does not verify is never a base


def test_a_refreshed_base_spares_the_page_its_full_verification(
    log: AuditLog, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server's background pass (keep_verified) is what verifies in full: a page view after it only
    extends the base, even when the previous base had expired."""
    fill(log, engine)
    assert log.refresh_verification().ok
    fill(log, engine, 3)
    full_passes: list[int] = []
    real = log._verify  # counting the full passes is the point

    def counted(*args: Any) -> Any:
        full_passes.append(1)
        return real(*args)

    monkeypatch.setattr(log, "_verify", counted)
    recent = log.verify_recent()
    assert recent.ok and recent.incremental and recent.full_size == SIZE and not full_passes
    sql(engine, "UPDATE audit_entries SET actor = 'mallory' WHERE seq = 1")
    found = log.refresh_verification()  # the next background pass finds the edit and leaves no base
    assert (found.problem, found.first_bad_seq) == (Problem.MODIFIED, 1)
    page = log.verify_recent()
    assert not page.ok and not page.incremental and page.first_bad_seq == 1 and len(full_passes) == 2


def test_keep_verified_verifies_in_the_background_at_once_and_then_again(
    log: AuditLog, engine: Engine
) -> None:
    fill(log, engine)
    with log.keep_verified(every=dt.timedelta(milliseconds=20)):
        deadline = dt.datetime.now() + dt.timedelta(seconds=20)
        while log._verified is None and dt.datetime.now() < deadline:
            threading.Event().wait(0.01)
        assert log._verified is not None and log._verified.full_size == SIZE
        fill(log, engine, 4)
        while log._verified.full_size == SIZE and dt.datetime.now() < deadline:
            threading.Event().wait(0.01)
        assert log._verified.full_size == SIZE + 4  # a later pass took the new entries in full
    assert not any(t.name == "audit-verify" for t in threading.enumerate())  # the thread ends with the block


def test_the_cli_verify_finds_tampering_the_page_verified_before(tmp_path: Path) -> None:
    home = tmp_path / "hub"
    init_hub(home)
    from renkei.hub.home import Hub  # noqa: PLC0415

    hub = Hub(home)
    for i in range(5):
        hub.audit.append(actor="alice", action=AuditAction.WORKSPACE_QUERY, details={"i": i})
    assert hub.audit.verify_recent().ok
    sql(hub.engine, "UPDATE audit_entries SET actor = 'mallory' WHERE seq = 1")
    assert hub.audit.verify_recent().ok  # within the base's age: only new entries are checked
    result = CliRunner().invoke(main_app, ["audit", "verify", "--home", str(home)])
    assert result.exit_code != 0, result.output
    assert "seq 1" in result.output
    hub.engine.dispose()


def test_appending_refuses_a_log_whose_head_disagrees_with_its_rows(log: AuditLog, engine: Engine) -> None:
    fill(log, engine, 3)
    forged(engine, 3)
    with pytest.raises(AuditError, match="head is inconsistent"):
        log.append(actor="x", action=AuditAction.LOGIN_PASSWORD)


# --- concurrency --------------------------------------------------------------------------------------------

WORKERS = 4
PER_WORKER = 50


# Run as separate OS processes (not threads): each has its own connections and, on SQLite, its own file locks.
WORKER = """
import sys
from renkei.hub.audit import AuditLog
from renkei.hub.audit_actions import AuditAction
from renkei.hub.db import make_engine
url, worker, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
log = AuditLog(make_engine(url))
for i in range(count):
    log.append(actor=f"worker{worker}", action=AuditAction.WORKSPACE_QUERY, details={"i": i})
"""


def assert_complete(log: AuditLog, engine: Engine, workers: int, per_worker: int) -> None:
    total = workers * per_worker
    with engine.connect() as conn:
        seqs = [s for (s,) in conn.execute(select(ENTRIES.c.seq).order_by(ENTRIES.c.seq))]
        counts: dict[str, int] = dict(
            conn.execute(text("SELECT actor, count(*) FROM audit_entries GROUP BY actor")).all()
        )
    assert seqs == list(range(total))
    assert sorted(counts.values()) == [per_worker] * workers
    report = log.verify()
    assert report.ok and report.size == total, report.findings


def test_concurrent_threads_never_duplicate_or_skip_seq(log: AuditLog, engine: Engine) -> None:
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for i in range(PER_WORKER):
                log.append(actor=f"worker{worker}", action=AuditAction.WORKSPACE_QUERY, details={"i": i})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert_complete(log, engine, WORKERS, PER_WORKER)
    with engine.connect() as conn:
        sizes = [s for (s,) in conn.execute(text("SELECT size FROM audit_checkpoints ORDER BY size"))]
    assert sizes == list(range(EVERY, WORKERS * PER_WORKER + 1, EVERY))


def test_concurrent_processes_never_duplicate_or_skip_seq(tmp_path: Path) -> None:
    """SQLite only: there, processes differ from threads (file locks); on PostgreSQL both are just sessions.

    Two processes keep the test fast: each pays about a second of interpreter and SQLAlchemy start-up.
    """
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, url, str(w), "100"]) for w in range(2)]
    assert [w.wait(timeout=120) for w in workers] == [0, 0]
    assert_complete(AuditLog(engine), engine, 2, 100)
    engine.dispose()


def test_verify_reads_one_snapshot_while_others_append(log: AuditLog, engine: Engine) -> None:
    fill(log, engine, 5)
    stop = threading.Event()

    def keep_appending() -> None:
        while not stop.is_set():
            log.append(actor="busy", action=AuditAction.LOGIN_PASSWORD)

    writer = threading.Thread(target=keep_appending)
    writer.start()
    try:
        reports = [log.verify() for _ in range(5)]
    finally:
        stop.set()
        writer.join()
    assert all(r.ok for r in reports), [r.findings for r in reports]
    assert log.verify().ok


def test_head_keeps_only_a_logarithmic_frontier(log: AuditLog, engine: Engine) -> None:
    fill(log, engine, 100)
    with engine.connect() as conn:
        size, frontier = conn.execute(text("SELECT size, frontier FROM audit_head")).one()
    assert size == 100 and len(frontier) == 64 * (100).bit_count()
    assert merkle.Frontier.from_hex(size, frontier).root().hex() == log.verify().root_hex


def test_deleting_rows_through_the_orm_is_detected_too(log: AuditLog, engine: Engine) -> None:
    fill(log, engine, 4)
    with engine.begin() as conn:
        conn.execute(delete(ENTRIES).where(ENTRIES.c.seq == 1))
    assert (log.verify().problem, log.verify().first_bad_seq) == (Problem.DELETED, 1)


# --- the copy outside the database, coverage policy, the CLI -------------------------------------------------


@pytest.fixture
def copied_log(engine: Engine, signing_key: Ed25519PrivateKey, tmp_path: Path) -> AuditLog:
    return AuditLog(engine, signing_key, checkpoint_every=EVERY, checkpoint_copy=tmp_path / "copies.jsonl")


def test_checkpoints_on_demand_are_appended_to_the_copy_file(
    copied_log: AuditLog, engine: Engine, tmp_path: Path
) -> None:
    fill(copied_log, engine, 3)
    first = copied_log.checkpoint()
    fill(copied_log, engine, 2)
    second = copied_log.checkpoint()
    path = tmp_path / "copies.jsonl"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_checkpoint_copies(path).checkpoints == (first, second)
    assert [json.loads(line)["size"] for line in path.read_text().splitlines()] == [3, 5]
    report = copied_log.verify()
    assert report.ok and report.covered == 5 and report.uncovered_since is None and report.warnings == ()


def test_a_full_rewrite_with_deleted_stored_checkpoints_is_caught_by_the_copy(
    copied_log: AuditLog, engine: Engine, signing_key: Ed25519PrivateKey
) -> None:
    """The probe's attack: edit, recompute every leaf hash and the head, delete the stored checkpoints."""
    fill(copied_log, engine, 5)
    copied_log.checkpoint()
    sql(engine, "UPDATE audit_entries SET actor = 'mallory', result = 'allowed' WHERE seq = 2")
    rehash_everything(engine)
    sql(engine, "DELETE FROM audit_checkpoints")
    plain = AuditLog(engine, signing_key)  # the same database without the copy: nothing contradicts it
    assert plain.verify().ok
    report = copied_log.verify()
    assert report.problem is Problem.MODIFIED and "differs from the signed tree" in report.message_en


def test_an_edited_copy_line_is_a_finding_and_a_torn_last_line_a_warning(
    copied_log: AuditLog, engine: Engine, tmp_path: Path
) -> None:
    fill(copied_log, engine, 3)
    copied_log.checkpoint()
    path = tmp_path / "copies.jsonl"
    good = path.read_text()
    path.write_text(good + '{"format": "renkei-audit-checkpoint/v1", "size": 1')
    torn = copied_log.verify()
    assert torn.ok and any("cut short" in w for w in torn.warnings)
    path.write_text(good.replace('"size":3', '"size":2'))
    assert copied_log.verify().problem is Problem.BAD_SIGNATURE
    path.write_text("garbage\n" + good)
    edited = copied_log.verify()
    assert edited.problem is Problem.BAD_SIGNATURE and "line(s) 1 " in edited.message_en


def test_uncovered_entries_are_reported_with_the_time_of_the_first(
    copied_log: AuditLog, engine: Engine
) -> None:
    fill(copied_log, engine, 3)
    copied_log.checkpoint()
    fill(copied_log, engine, 4)
    report = copied_log.verify()
    assert report.ok and report.covered == 3
    assert any("entries 3..6 are not yet covered" in w for w in report.warnings)
    third = row(engine, 3)["at"]
    assert report.uncovered_since is not None
    assert report.uncovered_since.replace(tzinfo=None) == third.replace(tzinfo=None)
    now = dt.datetime.now(dt.UTC)
    assert report.unsigned_too_long(dt.timedelta(0), now + dt.timedelta(seconds=1))
    assert not report.unsigned_too_long(MAX_UNSIGNED_AGE, now)


def audit_cli(home: Path, *arguments: str) -> Result:
    return CliRunner().invoke(main_app, ["audit", *arguments, "--home", str(home)])


def test_cli_verify_catches_a_full_rewrite_and_prints_every_warning(tmp_path: Path) -> None:
    """Without `--checkpoint`: the copy in the hub home catches the rewrite; without it, the policy age does."""
    hub = init_hub(tmp_path / "hub")  # signs a checkpoint at init, as every import does
    for i in range(5):
        hub.audit.append(actor="alice", action=AuditAction.WORKSPACE_QUERY, resource=f"juki/2024-01-01/v{i}")
    assert audit_cli(hub.home, "checkpoint").exit_code == 0  # the scheduled command
    assert audit_cli(hub.home, "verify").exit_code == 0
    sql(hub.engine, "UPDATE audit_entries SET actor = 'mallory' WHERE seq = 3")
    rehash_everything(hub.engine)
    sql(hub.engine, "DELETE FROM audit_checkpoints")
    rewritten = audit_cli(hub.home, "verify")
    assert rewritten.exit_code == 5, rewritten.output
    assert "differs from the signed tree" in rewritten.output
    (hub.home / CHECKPOINT_COPY_FILE).unlink()  # the attacker removes the copy too
    fresh = audit_cli(hub.home, "verify")
    assert fresh.exit_code == 0 and "entries 0..5 are not yet covered by a signed checkpoint" in fresh.output
    stale = audit_cli(hub.home, "verify", "--max-unsigned-hours", "0")
    assert stale.exit_code == 8, stale.output
    assert "not yet covered" in stale.output and "unsigned for over 0 hours" in stale.output
    hub.engine.dispose()
