"""Passwords (パスワード): the knowledge factor of a designated user's login, hashed with argon2id.

Hashing (ASVS v5.0.0-11.4.2 and its Appendix C): argon2id with m = 46 MiB, t = 1, p = 1, a 128-bit random salt
and a 256-bit output. Appendix C lists (t=1, m≥46 MiB), (t=2, m≥19 MiB) and (t≥3, m≥12 MiB) as equivalent
minimums; we take the high-memory row because memory, not time, is what a GPU or ASIC attacker pays for, and a
hub with a few hundred staff logging in a few times a day can spend 46 MiB and ~0.1 s per login. The
parameters are written into every encoded hash (``$argon2id$v=19$m=47104,t=1,p=1$…``), so raising them later
only needs a new :class:`HashParameters`; each user's hash is upgraded at their next successful login
(:meth:`Passwords.needs_rehash`).

Rules for a new password (NIST SP 800-63B §3.1.1.2, ASVS v5.0.0-6.2.x):

- at least 12 characters. Login here always needs a second factor (staff card or TOTP), for which NIST allows
  8; we ask for 12 because the hub holds (pseudonymised) personal data of a whole city and staff share
  terminals, so shoulder-surfed or reused short passwords are the likelier threat, and 12 still fits a
  memorable passphrase. 15 is NIST's number for single-factor passwords, which we never use.
- at most 256 characters (NIST: permit at least 64); every Unicode character allowed and counted once after
  NFKC normalisation (so full-width ``ｐａｓｓ`` and ``pass`` are the same password); no composition rules; no
  truncation: the whole normalised string is hashed.
- rejected when it is the user's current password or one of their last :data:`HISTORY_SIZE` (a forced change
  that "changes" the one-time password to itself would leave the admin's choice valid for good);
- rejected, with the reason, when it is a common password (``blocklist.txt``), a common password padded with a
  few digits or symbols, mostly context words (renkei, 神戸, the login id, the display name …), or repetitive
  or sequential (``aaaa…``, ``abcd…``, ``1234…``, ``qwerty…``).
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import secrets
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache, cached_property
from importlib import resources

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Boolean, ForeignKey, String, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from renkei.clock import SYSTEM_CLOCK, Clock
from renkei.errors import RenkeiError
from renkei.hub.access.people import User
from renkei.hub.audit import UTCDateTime
from renkei.hub.db import Base

MIN_LENGTH = 12
MAX_LENGTH = 256
# Longer input cannot be a password we accepted; it is refused after the same work as a wrong password.
MAX_VERIFY_LENGTH = 1024
BLOCKLIST_RESOURCE = "blocklist.txt"
# How many earlier password hashes are kept (besides the current one) and refused as a new password.
HISTORY_SIZE = 5

# Words anyone guessing a renkei password would try first (login id and display name are added per user).
CONTEXT_WORDS = (
    "renkei",
    "連携",
    "kobe",
    "神戸",
    "こうべ",
    "コウベ",
    "hyogo",
    "兵庫",
    "shiyakusho",
    "市役所",
    "password",
    "パスワード",
)
# Padding a common word with at most this many digits or symbols does not make it uncommon.
MAX_TRIVIAL_PADDING = 6
# A password whose context words are removed must keep at least this many characters of its own.
MIN_OWN_CHARACTERS = 8

_LEET = str.maketrans(
    {"@": "a", "4": "a", "0": "o", "1": "l", "!": "i", "3": "e", "$": "s", "5": "s", "7": "t"}
)
_PADDING = re.compile(r"^[\W\d_]*(.*?)[\W\d_]*$", re.DOTALL)
_KEYBOARD_WALKS = (
    "1234567890",
    "qwertyuiop",
    "asdfghjkl",
    "zxcvbnm",
    "qwertyuiopasdfghjklzxcvbnm",
    "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p",
    "qazwsxedcrfvtgbyhnujmikolp",
    "あいうえおかきくけこさしすせそたちつてとなにぬねのはひふへほまみむめもやゆよらりるれろわをん",
    "アイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワヲン",
)


@dataclass(frozen=True, slots=True)
class HashParameters:
    """argon2id cost: time (passes), memory (KiB) and lanes."""

    time_cost: int
    memory_kib: int
    parallelism: int

    def meets_asvs(self) -> bool:
        """True when these parameters are at or above ASVS v5.0.0 Appendix C for argon2id."""
        if self.parallelism < 1:
            return False
        if self.time_cost >= 3:
            return self.memory_kib >= 12 * 1024
        if self.time_cost == 2:
            return self.memory_kib >= 19 * 1024
        return self.time_cost == 1 and self.memory_kib >= 46 * 1024


PRODUCTION_PARAMETERS = HashParameters(time_cost=1, memory_kib=46 * 1024, parallelism=1)
SALT_BYTES = 16  # 128 bits; NIST asks for at least 32
HASH_BYTES = 32


class WeakPasswordError(RenkeiError):
    """A new password breaks the rules; ``reason`` is a stable code for the web layer and tests."""

    def __init__(self, reason: str, ja: str, en: str) -> None:
        self.reason = reason
        super().__init__(ja, en)


class PasswordRecord(Base):
    """A user's password hash, kept apart from :class:`User` so the secret never travels with the profile."""

    __tablename__ = "user_passwords"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    encoded_hash: Mapped[str] = mapped_column(String(255))  # argon2 PHC string: parameters, salt, hash
    changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    changed_by: Mapped[str] = mapped_column(String(128))
    # Set when an admin chose the password (initial or reset): the user must replace it (ASVS 6.4.1).
    must_change: Mapped[bool] = mapped_column(Boolean, default=False)


class PasswordHistoryRecord(Base):
    """A user's earlier password hash, kept so that a change cannot go back to it (the last few only)."""

    __tablename__ = "password_history"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    encoded_hash: Mapped[str] = mapped_column(String(255))
    retired_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


def normalize(password: str) -> str:
    """NFKC, as NIST suggests, so the same characters typed through different input methods match."""
    return unicodedata.normalize("NFKC", password)


class Passwords:
    """Hash and verify passwords with one set of argon2id parameters."""

    def __init__(self, parameters: HashParameters = PRODUCTION_PARAMETERS) -> None:
        self.parameters = parameters
        self._hasher = PasswordHasher(
            time_cost=parameters.time_cost,
            memory_cost=parameters.memory_kib,
            parallelism=parameters.parallelism,
            hash_len=HASH_BYTES,
            salt_len=SALT_BYTES,
            type=Type.ID,
        )

    def hash(self, password: str) -> str:
        return self._hasher.hash(normalize(password).encode("utf-8"))

    def verify(self, encoded: str, password: str) -> bool:
        """Whether ``password`` matches ``encoded`` (entire string, no truncation)."""
        if len(password) > MAX_VERIFY_LENGTH:
            self.dummy_verify(password[:MAX_VERIFY_LENGTH])
            return False
        try:
            data = normalize(password).encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates: never a password we hashed
            self.dummy_verify("")
            return False
        try:
            return self._hasher.verify(encoded, data)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, encoded: str) -> bool:
        """True when ``encoded`` was made with other (older, weaker) parameters than ours."""
        try:
            return self._hasher.check_needs_rehash(encoded)
        except InvalidHashError:
            return True

    @cached_property
    def _dummy_hash(self) -> str:
        return self.hash(secrets.token_urlsafe(24))

    def dummy_verify(self, password: str) -> None:
        """Spend the time of a real verification, for unknown users (no enumeration by timing, ASVS 6.3.8)."""
        self.verify(self._dummy_hash, password[:MAX_VERIFY_LENGTH])


# --- the rules for a new password ---------------------------------------------------------------------------


@cache
def blocklist() -> frozenset[str]:
    """The shipped common-password list; a missing file is an error, never an empty list (fail closed)."""
    text = resources.files("renkei.hub.access").joinpath(BLOCKLIST_RESOURCE).read_text(encoding="utf-8")
    entries = frozenset(
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )
    if len(entries) < 3000:
        raise RuntimeError("password blocklist is missing or truncated")
    return entries


def check_new_password(password: str, *, login_id: str = "", display_name: str = "") -> None:
    """Raise :class:`WeakPasswordError` (with the reason, in Japanese and English) if ``password`` is refused."""
    text = normalize(password)
    _check_characters(text)
    if len(text) < MIN_LENGTH:
        raise WeakPasswordError(
            "too_short",
            f"パスワードは {MIN_LENGTH} 文字以上にしてください（現在 {len(text)} 文字）",
            f"the password must have at least {MIN_LENGTH} characters (it has {len(text)})",
        )
    if len(text) > MAX_LENGTH:
        raise WeakPasswordError(
            "too_long",
            f"パスワードは {MAX_LENGTH} 文字以下にしてください",
            f"the password must have at most {MAX_LENGTH} characters",
        )
    folded = text.casefold()
    if is_trivial(folded):
        raise WeakPasswordError(
            "repetitive",
            "同じ文字の繰り返しや、連続した文字列（abcd・1234・qwerty など）はパスワードにできません",
            "the password is repetitive or sequential (like aaaa, abcd, 1234 or qwerty)",
        )
    if is_common(folded):
        raise WeakPasswordError(
            "common",
            "よく使われるパスワードの一覧に含まれています（数字や記号を足しただけのものを含む）。別のパスワードにしてください",
            "the password is a commonly used one (or one padded with a few digits or symbols); choose another",
        )
    if _mostly_context(folded, context_words(login_id, display_name)):
        raise WeakPasswordError(
            "context",
            "利用者ID・氏名・「renkei」「神戸」など推測されやすい語が主な部分です。他人に推測されない語を加えてください",
            "the password consists mostly of guessable words (your login id, your name, renkei, Kobe ...)",
        )


def _check_characters(text: str) -> None:
    for ch in text:
        category = unicodedata.category(ch)
        if category in ("Cc", "Cs"):
            raise WeakPasswordError(
                "invalid_character",
                "パスワードに制御文字（改行・タブなど）や使えない文字が含まれています",
                f"the password contains a control character or an unpaired surrogate (U+{ord(ch):04X})",
            )


def context_words(login_id: str, display_name: str) -> list[str]:
    """The words a guesser knows about this user and this system, casefolded, longest first."""
    words = {w.casefold() for w in CONTEXT_WORDS}
    login = normalize(login_id).casefold()
    words.update(part for part in re.split(r"[._\-@\s]+", login) if len(part) >= 3)
    if len(login) >= 3:
        words.add(login)
    name = normalize(display_name).casefold()
    words.update(part for part in name.split() if len(part) >= 2)
    if len(compact := "".join(name.split())) >= 2:
        words.add(compact)
    return sorted(words, key=len, reverse=True)


def _mostly_context(folded: str, words: Iterable[str]) -> bool:
    remainder = folded
    for word in words:
        remainder = remainder.replace(word, "")
    if remainder == folded:
        return False
    own = remainder.strip()
    return len(own) < MIN_OWN_CHARACTERS or is_trivial(own) or is_common(own)


def is_common(folded: str) -> bool:
    """In the blocklist as typed, with leetspeak undone, or once padding digits/symbols are removed."""
    listed = blocklist()
    if folded in listed or folded.translate(_LEET) in listed:
        return True
    match = _PADDING.match(folded)
    core = match.group(1) if match else folded
    padding = len(folded) - len(core)
    if len(core) < 4 or core == folded:
        return False
    padding_text = folded.replace(core, "", 1)
    if padding > MAX_TRIVIAL_PADDING and not is_trivial(padding_text):
        return False
    return core in listed or core.translate(_LEET) in listed


def is_trivial(folded: str) -> bool:
    """Repetitive or sequential: few distinct characters, one repeated unit, runs, or a keyboard walk."""
    if len(set(folded)) <= 3:
        return True
    if _repeats_a_unit(folded) or _run_count(folded) <= 3:
        return True
    return any(folded in walk or folded in walk[::-1] for walk in _keyboard_walks())


def _repeats_a_unit(text: str) -> bool:
    return any(
        len(text) % size == 0 and text == text[:size] * (len(text) // size)
        for size in range(1, len(text) // 2 + 1)
    )


def _run_count(text: str) -> int:
    """How many maximal runs of equal or consecutive code points (aaa, abc, 321) the text is made of."""
    runs, step = 1, None
    for previous, current in itertools.pairwise(text):
        diff = ord(current) - ord(previous)
        if diff in (-1, 0, 1) and step in (None, diff):
            step = diff
            continue
        runs, step = runs + 1, None
    return runs


@cache
def _keyboard_walks() -> tuple[str, ...]:
    # Doubled so that walks which wrap around (…890123…) are found too.
    return tuple(walk * 2 for walk in _KEYBOARD_WALKS)


# --- stored passwords ---------------------------------------------------------------------------------------


def recent_hashes(session: Session, user_id: int) -> list[str]:
    """The current hash and the kept earlier ones, newest first: what a new password must not match."""
    current = session.get(PasswordRecord, user_id)
    earlier = session.scalars(
        select(PasswordHistoryRecord.encoded_hash)
        .where(PasswordHistoryRecord.user_id == user_id)
        .order_by(PasswordHistoryRecord.id.desc())
    )
    return ([current.encoded_hash] if current is not None else []) + list(earlier)


def check_not_reused(passwords: Passwords, password: str, encoded_hashes: Iterable[str]) -> None:
    """Raise :class:`WeakPasswordError` ``reused`` if ``password`` matches any of ``encoded_hashes``."""
    if any(passwords.verify(encoded, password) for encoded in encoded_hashes):
        raise WeakPasswordError(
            "reused",
            f"現在のパスワードや最近使ったパスワード（直近 {HISTORY_SIZE} 回分）は使えません。新しいパスワードにしてください",
            f"the new password must differ from the current one and the last {HISTORY_SIZE}",
        )


def store_hash(
    session: Session, user: User, encoded_hash: str, *, changed_by: str, must_change: bool, clock: Clock
) -> PasswordRecord:
    """Make ``encoded_hash`` the user's password, moving the replaced hash into the (trimmed) history."""
    record = session.get(PasswordRecord, user.id)
    now = clock.now()
    if record is None:
        record = PasswordRecord(user_id=user.id)
        session.add(record)
    else:
        session.add(PasswordHistoryRecord(user_id=user.id, encoded_hash=record.encoded_hash, retired_at=now))
        session.flush()
        _trim_history(session, user.id)
    record.encoded_hash = encoded_hash
    record.changed_at = now
    record.changed_by = changed_by
    record.must_change = must_change
    session.flush()
    return record


def _trim_history(session: Session, user_id: int) -> None:
    kept = select(PasswordHistoryRecord.id).where(PasswordHistoryRecord.user_id == user_id)
    kept = kept.order_by(PasswordHistoryRecord.id.desc()).limit(HISTORY_SIZE)
    session.execute(
        delete(PasswordHistoryRecord).where(
            PasswordHistoryRecord.user_id == user_id,
            PasswordHistoryRecord.id.not_in(list(session.scalars(kept))),
        )
    )


def set_password(
    session: Session,
    user: User,
    password: str,
    *,
    passwords: Passwords,
    changed_by: str,
    must_change: bool,
    clock: Clock = SYSTEM_CLOCK,
) -> PasswordRecord:
    """Check ``password`` against the rules for ``user`` and store its hash (the old one goes to the history).

    An admin's reset is not compared with the history: that would tell the admin the user's earlier passwords.
    """
    check_new_password(password, login_id=user.login_id, display_name=user.display_name)
    return store_hash(
        session, user, passwords.hash(password), changed_by=changed_by, must_change=must_change, clock=clock
    )
