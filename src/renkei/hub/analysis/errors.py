"""The analysis path's one error type: a request it refuses, with the reason in Japanese and English."""

from __future__ import annotations

from renkei.errors import RenkeiError


class AnalysisError(RenkeiError):
    """A result the rules do not let the hub show or export as asked (the message says why and what to do)."""

    exit_code = 2
    http_status = 422


class ReleaseNotFound(AnalysisError):  # noqa: N818
    exit_code = 2
    http_status = 404
