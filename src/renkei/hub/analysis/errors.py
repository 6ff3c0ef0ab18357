"""The analysis path's one error type: a request it refuses, with the reason in Japanese and English."""

from __future__ import annotations

from renkei.errors import RenkeiError


class AnalysisError(RenkeiError):
    exit_code = 2
