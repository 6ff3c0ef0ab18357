"""User-facing errors: each names where the problem is and says what is wrong, Japanese first.

Every error a user can cause derives from :class:`RenkeiError`. The CLI prints it and exits with its
``exit_code``; anything else is a bug and gets a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Location:
    """Where a problem is: a file, and optionally a line, a column (CSV) or a key path (YAML)."""

    file: Path | str | None = None
    line: int | None = None
    column: str | None = None
    key: str | None = None

    def __str__(self) -> str:
        parts: list[str] = []
        if self.file is not None:
            parts.append(str(self.file))
        if self.line is not None:
            parts.append(f"{self.line}行目 (line {self.line})")
        if self.column is not None:
            parts.append(f"列「{self.column}」 (column {self.column!r})")
        if self.key is not None:
            parts.append(f"キー {self.key} (key {self.key})")
        return ", ".join(parts)


class RenkeiError(Exception):
    """An error the user can fix. ``ja`` is shown first, ``en`` after it."""

    exit_code = 2

    def __init__(self, ja: str, en: str, where: Location | None = None) -> None:
        self.ja = ja
        self.en = en
        self.where = where
        super().__init__(self.render())

    def render(self) -> str:
        return "\n".join(self.lines())

    def lines(self) -> tuple[str, str]:
        """The message's two lines: where and the Japanese, then the English (each may hold untrusted text)."""
        head = f"{self.where}: " if self.where is not None and str(self.where) else ""
        return f"{head}{self.ja}", f"  ({self.en})"


class SpecError(RenkeiError):
    """A dataset spec is invalid."""


class InputError(RenkeiError):
    """An input file cannot be read as the spec says (encoding, shape, columns)."""


class LeftoverIdentifierError(RenkeiError):
    """A kept column still holds identifier-shaped values; the extract is stopped."""

    exit_code = 3


class KeyFileError(RenkeiError):
    """A key file is missing, unreadable, too permissive, or would be overwritten."""
