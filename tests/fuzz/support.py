"""What every fuzz test asserts of a rejection: a RenkeiError that says, in both languages, what is wrong."""

from __future__ import annotations

from pathlib import Path

from renkei.errors import RenkeiError


def assert_clear(error: RenkeiError, where: Path | None = None) -> None:
    """``error`` names what is wrong (Japanese and English) and, for a file, the file it is about."""
    assert error.ja.strip() and error.en.strip(), error
    assert error.exit_code != 1, error  # answered as a user's error, not as a bug
    if where is not None:
        assert error.where is not None and error.where.file is not None, error
        assert Path(str(error.where.file)) == where, error
