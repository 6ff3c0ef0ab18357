"""kill -9 during ``renkei vault rotate-key``: afterwards every rotation that changed anything is in the audit
log with its intent and exactly one outcome that matches the key in force (issue 9, item 15).

A child process imports the hub once, then forks one rotation per kill point, each on a fresh copy of the same
hub. Every file-system step a rotation takes (open, fsync, rename, replace, chmod, unlink …) is counted, and
the rotation SIGKILLs itself just before step N, for every N; one more is killed just after ``kek.key`` was
replaced, before the outcome could be appended. Each hub is then started as after a crash (which reconciles
the rotation), checked, and rotated again.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from renkei.hub.access.designation import designate_user
from renkei.hub.access.people import Role
from renkei.hub.access.totp import TotpSecret, current_code, enroll_totp, verify_totp
from renkei.hub.audit import AuditEntry
from renkei.hub.audit_actions import AuditAction
from renkei.hub.catalog import get_or_create_department
from renkei.hub.db import database_url, make_engine
from renkei.hub.home import Hub, init_hub
from renkei.hub.keys import KEK_FILE, load_kek
from renkei.hub.rotation import NOTE_FILE, rotate_kek
from renkei.hub.vault import SnapshotRef

# argv: jobs "home|N" (kill before step N; 0 = never, print the step count) or "home|after-replace".
# Prints one JSON list: how each rotation ended (negative = killed by that signal).
CHILD = r"""
import json, os, signal, sys
from pathlib import Path
from renkei.hub.home import Hub
from renkei.hub.rotation import rotate_kek

def count_steps(kill_at):
    steps = 0
    def counted(function):
        def step(*args, **kwargs):
            nonlocal steps
            steps += 1
            if steps == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return function(*args, **kwargs)
        return step
    for name in ("open", "fsync", "mkdir", "rename", "replace", "chmod", "unlink", "rmdir"):
        setattr(os, name, counted(getattr(os, name)))
    return lambda: steps

def kill_after_the_key_is_replaced():
    real = os.replace
    def replace(source, target, **kwargs):
        real(source, target, **kwargs)
        if Path(target).name == "kek.key":
            os.kill(os.getpid(), signal.SIGKILL)
    os.replace = replace

ended = []
for job in sys.argv[1:]:
    home, mode = job.split("|")
    pid = os.fork()
    if pid == 0:
        hub = Hub(Path(home))
        hub.vault, hub.audit.size()  # keys and database opened before the counting starts
        if mode == "after-replace":
            kill_after_the_key_is_replaced()
            steps = lambda: 0
        else:
            steps = count_steps(int(mode))
        rotate_kek(hub, actor="test")
        if mode == "0":
            print(steps(), flush=True)
        os._exit(0)
    ended.append(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
print(json.dumps(ended), flush=True)
"""


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A hub with one stored snapshot and one TOTP user; returns its home and that user's secret."""
    root = tmp_path_factory.mktemp("rotation")
    hub = init_hub(root / "hub")
    data, manifest = root / "data.parquet", root / "manifest.json"
    data.write_bytes(random.Random(5).randbytes(100_000))
    manifest.write_text('{"rows": 10}', encoding="utf-8")
    hub.vault.store(
        SnapshotRef("juki", dt.date(2025, 1, 1), 1), {"data.parquet": data, "manifest.json": manifest}
    )
    with hub.session() as session:
        get_or_create_department(session, "税務課")
        user = designate_user(
            session,
            hub.audit,
            login_id="kato",
            display_name="加藤",
            role=Role.ANALYST,
            department="税務課",
            password="a passphrase of its own 7",
            actor="test",
        )
        uri = enroll_totp(session, user, kek=hub.kek, enrolled_by="test")
        session.commit()
    hub.engine.dispose()
    return hub.home, uri.split("secret=")[1].split("&")[0]


def _copy(template: Path, home: Path) -> Path:
    shutil.copytree(template, home, symlinks=True)
    return home


def _rotate_in_children(jobs: list[str]) -> list[str]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("RENKEI_KEK", "RENKEI_KMS", "RENKEI_DATABASE_URL")
    }
    command = [sys.executable, "-c", CHILD, *jobs]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def _rotation_entries(home: Path) -> list[AuditEntry]:
    """Read without starting a hub (which would reconcile)."""
    engine = make_engine(database_url(home))
    try:
        with engine.connect() as connection:
            query = select(AuditEntry).where(
                AuditEntry.action.in_((AuditAction.VAULT_ROTATE_KEY_BEGIN, AuditAction.VAULT_ROTATE_KEY))
            )
            return [AuditEntry(**row._mapping) for row in connection.execute(query.order_by(AuditEntry.seq))]
    finally:
        engine.dispose()


def _check_after_kill(home: Path, original_kek_id: str, secret: str) -> tuple[bool, bool]:
    """Start the hub as after the crash; returns (outcome was missing before the start, the new key was in force)."""
    missing_before = [e.action for e in _rotation_entries(home)] == [AuditAction.VAULT_ROTATE_KEY_BEGIN]
    hub = Hub(home)  # reconciles
    entries = _rotation_entries(home)
    in_force = load_kek(home).key_id
    assert not (home / NOTE_FILE).exists()
    intents = [e for e in entries if e.action == AuditAction.VAULT_ROTATE_KEY_BEGIN]
    outcomes = [e for e in entries if e.action == AuditAction.VAULT_ROTATE_KEY]
    if not intents:  # killed before the intent: nothing may have changed
        assert in_force == original_kek_id and outcomes == []
    else:
        [intent], [outcome] = intents, outcomes
        new_kek_id = intent.details["new_kek_id"]
        assert outcome.details["intent_seq"] == intent.seq and in_force in (original_kek_id, new_kek_id)
        assert (outcome.result == "ok") == (in_force == new_kek_id), (outcome.result, outcome.reason)
    assert hub.audit.verify().ok
    rotate_kek(hub, actor="test")  # the re-run resumes or starts afresh
    assert hub.vault.verify() == []
    with hub.session() as session:
        record = session.scalars(select(TotpSecret)).one()
        assert verify_totp(
            session, record.user_id, current_code(secret, dt.datetime.now(dt.UTC)), kek=hub.kek
        )
    hub.engine.dispose()
    return missing_before, bool(intents) and in_force != original_kek_id


def test_a_kill_between_the_key_replacement_and_the_audit_entry_is_reconciled(
    template: tuple[Path, str], tmp_path: Path
) -> None:
    source, _ = template
    home = _copy(source, tmp_path / "hub")
    original = load_kek(home).key_id
    (ended,) = _rotate_in_children([f"{home}|after-replace"])
    assert json.loads(ended) == [-signal.SIGKILL]
    assert load_kek(home).key_id != original  # the new key is in force …
    assert [e.action for e in _rotation_entries(home)] == [
        AuditAction.VAULT_ROTATE_KEY_BEGIN
    ]  # … with no outcome yet
    Hub(home).engine.dispose()
    begin, outcome = _rotation_entries(home)
    assert (outcome.action, outcome.result, outcome.actor) == (
        AuditAction.VAULT_ROTATE_KEY,
        "ok",
        "system:start",
    )
    assert outcome.details == {**begin.details, "intent_seq": begin.seq, "reconciled": True}
    assert begin.details["new_kek_id"] == load_kek(home).key_id and (home / KEK_FILE).exists()
    Hub(home).engine.dispose()  # a second start appends nothing
    assert len(_rotation_entries(home)) == 2


def test_sigkill_at_every_step_leaves_every_rotation_recorded(
    template: tuple[Path, str], tmp_path: Path
) -> None:
    source, secret = template
    original = load_kek(source).key_id
    steps, ended = _rotate_in_children([f"{_copy(source, tmp_path / 'count')}|0"])
    assert json.loads(ended) == [0]
    total = int(steps)
    assert total >= 15
    homes = [_copy(source, tmp_path / f"kill{n}") for n in range(1, total + 1)]
    (ended,) = _rotate_in_children([f"{home}|{n}" for n, home in enumerate(homes, start=1)])
    assert json.loads(ended) == [-signal.SIGKILL] * total
    results = [_check_after_kill(home, original, secret) for home in homes]
    assert any(missing and done for missing, done in results)  # some died after the swap, before the entry
    assert any(not done for _, done in results) and any(done for _, done in results)
