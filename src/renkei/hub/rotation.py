"""KEK rotation (``renkei vault rotate-key``), audited so that no rotation goes unrecorded.

A rotation makes the next KEK durable (``kek.key.new``), rewraps every data key and TOTP secret to it and only
then lets it replace ``kek.key`` (:mod:`renkei.hub.keys`). It is recorded twice: the intent
(``vault.rotate_key_begin``, with both key ids) before any key file changes, and the outcome
(``vault.rotate_key``: ``ok`` with the counts, or ``error``; with the intent's sequence number) after
``kek.key`` is replaced. A process killed in between would leave a rotation half recorded, so
``<home>/kek.rotation.json`` notes it from before the intent until after the outcome; a hub that starts
(:class:`renkei.hub.home.Hub`) and finds the note records the outcome it finds: ``ok`` when the new key is in
force, ``error`` (interrupted) when it is not (run ``rotate-key`` again: it resumes). Key ids are public
fingerprints, never keys. ``kek.rotation.lock`` keeps a starting portal from reconciling a rotation that is
still running.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from renkei.files import exclusive_flock, fsync_dir
from renkei.hub.audit import AuditEntry
from renkei.hub.audit_actions import AuditAction
from renkei.hub.keys import finish_kek_rotation, prepare_kek_rotation

if TYPE_CHECKING:
    from renkei.hub.home import Hub

NOTE_FILE = "kek.rotation.json"
LOCK_FILE = "kek.rotation.lock"
RECONCILER = "system:start"


@dataclass(frozen=True, slots=True)
class Rewrapped:
    """What a KEK rotation moved to the new key."""

    data_keys: int
    totp_secrets: int


def rotate_kek(hub: Hub, *, actor: str) -> Rewrapped:
    """Replace the KEK file with a new key; rewrap every data key and TOTP secret (data files stay as they are).

    The TOTP secrets are rewrapped in one transaction after the vault's key files, both before the new key
    replaces ``kek.key``; run again after a crash, each skips what is already under the new key.
    """
    from renkei.hub.access.totp import rewrap_totp_secrets  # noqa: PLC0415 (every Hub() imports this module)

    with _rotation_lock(hub.home, blocking=True):
        new = prepare_kek_rotation(hub.home)
        old = hub.kek
        note = {"old_kek_id": old.key_id, "new_kek_id": new.key_id}
        _write_note(hub.home, note)
        intent = hub.audit.append(actor=actor, action=AuditAction.VAULT_ROTATE_KEY_BEGIN, details=note)
        details: dict[str, Any] = {**note, "intent_seq": intent.seq}
        try:
            data_keys = hub.vault.rotate_kek(new)
            with hub.session() as session:
                totp_secrets = rewrap_totp_secrets(session, old, new)
                session.commit()
            finish_kek_rotation(hub.home)
        except Exception as exc:
            reason = f"{type(exc).__name__}: the rotation stopped; run rotate-key again"
            hub.audit.append(
                actor=actor,
                action=AuditAction.VAULT_ROTATE_KEY,
                result="error",
                reason=reason,
                details=details,
            )
            _remove_note(hub.home)
            raise
        hub.__dict__["kek"] = new  # the cached KEK is the new one from now on
        counts = {"rewrapped": data_keys, "totp_secret_count": totp_secrets}
        hub.audit.append(actor=actor, action=AuditAction.VAULT_ROTATE_KEY, details={**details, **counts})
        _remove_note(hub.home)
    return Rewrapped(data_keys, totp_secrets)


def rotation_pending(home: Path) -> bool:
    """Whether a rotation's note is there: one is running, or one was killed before its outcome was audited."""
    return (home / NOTE_FILE).exists()


def reconcile_rotation(hub: Hub) -> AuditEntry | None:
    """Record the outcome of a rotation whose process ended after its intent; returns the entry appended.

    Nothing is appended when a rotation is running now (it will record its own outcome), when its outcome is
    already recorded (killed just before the note was removed), or when it never recorded its intent (killed
    before changing anything).
    """
    with _rotation_lock(hub.home, blocking=False) as alone:
        if not alone:
            return None
        note = _read_note(hub.home)
        entry = None
        intent = _last_rotation_entry(hub)
        if note is not None and intent is not None and _is_intent_of(intent, note):
            finished = hub.kek.key_id == note["new_kek_id"]
            entry = hub.audit.append(
                actor=RECONCILER,
                action=AuditAction.VAULT_ROTATE_KEY,
                result="ok" if finished else "error",
                reason="recorded at the next start: the rotating process ended before its outcome was logged"
                + ("" if finished else "; interrupted, the new key is not in force: run rotate-key again"),
                details={**note, "intent_seq": intent.seq, "reconciled": True},
            )
        _remove_note(hub.home)
    return entry


def _is_intent_of(entry: AuditEntry, note: dict[str, str]) -> bool:
    return entry.action == AuditAction.VAULT_ROTATE_KEY_BEGIN and entry.details.get("new_kek_id") == note.get(
        "new_kek_id"
    )


def _last_rotation_entry(hub: Hub) -> AuditEntry | None:
    """The latest intent or outcome of a rotation: an intent means its outcome is missing."""
    actions = (AuditAction.VAULT_ROTATE_KEY_BEGIN, AuditAction.VAULT_ROTATE_KEY)
    with hub.session() as session:
        query = select(AuditEntry).where(AuditEntry.action.in_(actions)).order_by(AuditEntry.seq.desc())
        return session.scalars(query.limit(1)).first()


@contextmanager
def _rotation_lock(home: Path, *, blocking: bool) -> Iterator[bool]:
    """Held by a rotation from start to end; yields False if not blocking and a rotation holds it."""
    fd = os.open(home / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    with exclusive_flock(fd, blocking=blocking) as held:
        yield held


def _write_note(home: Path, note: dict[str, str]) -> None:
    """Durably, in one rename: the note is there whole or not at all."""
    temporary = home / f"{NOTE_FILE}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(json.dumps(note, sort_keys=True).encode())
        out.flush()
        os.fsync(out.fileno())
    temporary.replace(home / NOTE_FILE)
    fsync_dir(home)


def _read_note(home: Path) -> dict[str, str] | None:
    try:
        note = json.loads((home / NOTE_FILE).read_bytes())
    except (FileNotFoundError, ValueError):
        return None
    return note if isinstance(note, dict) and isinstance(note.get("new_kek_id"), str) else None


def _remove_note(home: Path) -> None:
    (home / NOTE_FILE).unlink(missing_ok=True)
    fsync_dir(home)
