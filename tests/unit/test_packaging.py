"""The package metadata installs without deprecation warnings of the project's own (issue 10 item 5)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

PYPROJECT = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text(encoding="utf-8"))


def test_the_licence_is_an_spdx_expression_for_a_setuptools_that_reads_it() -> None:
    assert isinstance(PYPROJECT["project"]["license"], str)  # a table warns on every install
    setuptools = next(
        Requirement(r) for r in PYPROJECT["build-system"]["requires"] if Requirement(r).name == "setuptools"
    )
    assert not setuptools.specifier.contains(Version("76.9")), "SPDX licence strings need setuptools >= 77"
