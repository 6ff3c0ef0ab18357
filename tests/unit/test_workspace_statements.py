"""The statement filter's reading of which views a query names (renkei.hub.workspace.statements)."""

from __future__ import annotations

from renkei.hub.workspace.statements import views_read


def test_views_read_names_the_views() -> None:
    assert views_read("SELECT * FROM juki JOIN kaigo USING (pid)", {"juki", "kaigo"}) == {"juki", "kaigo"}


def test_deeply_nested_sql_counts_every_view_as_read() -> None:
    # Found by tests/fuzz: sqlglot's RecursionError escaped as a traceback; None means "every snapshot read".
    assert views_read("SELECT " + "(" * 2000 + "1" + ")" * 2000, {"juki"}) is None
