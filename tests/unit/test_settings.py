"""The hub's settings table: docs/settings.md lists exactly its settings, variables and defaults; hub.toml and
the environment are validated, and a refused value names the setting and its source."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from renkei.errors import RenkeiError
from renkei.hub.settings import DEFAULTS, SETTINGS, SETTINGS_FILE, HubSettings, SettingsError, load_settings

DOC = Path(__file__).parents[2] / "docs" / "settings.md"
ROW = re.compile(r"^\| `([a-z_.]+)` \| `(RENKEI_[A-Z_]+)` \| `([^`]*)` \| (.+) \|$", re.MULTILINE)


def toml(value: object) -> str:
    """A default as it would be written in hub.toml."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, tuple):
        return "[" + ", ".join(toml(v) for v in value) + "]"
    raise TypeError(value)


def test_the_doc_lists_every_setting_its_variable_and_default_and_no_other() -> None:
    documented = {
        name: (env, default) for name, env, default, _ in ROW.findall(DOC.read_text(encoding="utf-8"))
    }
    assert documented == {s.name: (s.env, toml(s.default)) for s in SETTINGS}


def test_every_setting_has_help_in_both_languages_and_its_own_variable() -> None:
    for setting in SETTINGS:
        assert setting.help_ja and setting.help_en, setting.name
        assert not setting.help_ja.isascii(), setting.name  # Japanese first
    variables = [s.env for s in SETTINGS]
    assert len(set(variables)) == len(variables)


def test_the_table_defaults_are_the_models(tmp_path: Path) -> None:
    loaded = load_settings(tmp_path, {})
    assert loaded == DEFAULTS == HubSettings()
    for setting in SETTINGS:
        value: object = loaded
        for part in setting.name.split("."):
            value = getattr(value, part)
        assert value == setting.default, setting.name


def test_the_file_then_the_environment(tmp_path: Path) -> None:
    (tmp_path / SETTINGS_FILE).write_text(
        "[sessions]\nidle_timeout_minutes = 20\nabsolute_timeout_hours = 8\n\n"
        '[web]\ntrusted_proxies = ["10.0.0.5", "10.1.0.0/16"]\n\n[disclosure.perturbation]\nmax_noise = 6\n',
        encoding="utf-8",
    )
    loaded = load_settings(
        tmp_path,
        {"RENKEI_SESSIONS_IDLE_TIMEOUT_MINUTES": "15", "RENKEI_AUDIT_CHECKPOINT_EVERY": " ", "X": "1"},
    )
    assert (loaded.sessions.idle_timeout_minutes, loaded.sessions.absolute_timeout_hours) == (15, 8)
    assert loaded.web.trusted_proxies == ("10.0.0.5", "10.1.0.0/16")
    assert loaded.disclosure.perturbation.max_noise == 6 and loaded.disclosure.threshold == 10
    assert loaded.audit.checkpoint_every == 1000  # an empty variable counts as unset
    with pytest.raises(ValueError, match="frozen"):
        loaded.sessions.idle_timeout_minutes = 1  # type: ignore[misc]


def test_variables_take_lists_comma_separated_and_old_names() -> None:
    loaded = load_settings(
        None,
        {
            "RENKEI_WEBAUTHN_ORIGINS": "https://portal.city.example, https://portal2.city.example",
            "RENKEI_KMS": "city_kms.plugin:factory",
            "RENKEI_WORKSPACE_SAME_USER": "1",
        },
    )
    assert loaded.webauthn.origins == ("https://portal.city.example", "https://portal2.city.example")
    assert loaded.keys.kms == "city_kms.plugin:factory" and loaded.workspace.allow_same_user


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("[sessions]\nidle_timeout_minutes = 0\n", 2, "sessions.idle_timeout_minutes"),
        (
            "# a comment\n[audit]\ncheckpoint_every = 10\nmax_unsigned_hours = -1\n",
            4,
            "audit.max_unsigned_hours",
        ),
        ("[web]\nmax_body_bytes = 100\n", 2, "web.max_body_bytes"),
        ('[web]\ntrusted_proxies = ["10.0.0.300"]\n', 2, "invalid trusted proxy address"),
        ("[sessions]\nidle_timeout_minutes = 700\nabsolute_timeout_hours = 10\n", 1, "must not exceed"),
        ("\n[quotas]\nfiles_per_day = 1\nfile_per_day = 3\n", 4, "unknown setting quotas.file_per_day"),
        ("[nonsense]\nx = 1\n", 1, "unknown setting nonsense"),
        ('[disclosure]\nmethod = "hide"\n', 2, "disclosure.method"),
        ("[disclosure.perturbation]\nmax_noise = 2\nsmall_cells = 5\n", 1, "small_cells must be at most"),
        ('[database]\nurl = "mysql://renkei:s3cret@db/renkei"\n', 2, "SQLite or PostgreSQL"),
        ("[imports]\nmax_payload_bytes = 34359738369\n", 2, "imports.max_payload_bytes"),
        ("[sessions\n", 1, "invalid TOML"),
    ],
)
def test_a_refused_value_in_the_file_names_the_setting_and_line(
    tmp_path: Path, text: str, line: int, message: str
) -> None:
    (tmp_path / SETTINGS_FILE).write_text(text, encoding="utf-8")
    with pytest.raises(SettingsError, match=re.escape(message)) as caught:
        load_settings(tmp_path, {})
    assert caught.value.where is not None
    assert (caught.value.where.file, caught.value.where.line) == (tmp_path / SETTINGS_FILE, line)
    assert "s3cret" not in str(caught.value)  # values are never repeated


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("RENKEI_SESSIONS_ABSOLUTE_TIMEOUT_HOURS", "twelve", "sessions.absolute_timeout_hours"),
        ("RENKEI_WORKSPACE_SAME_USER", "maybe", "workspace.allow_same_user"),
        ("RENKEI_DATABASE_URL", "oracle://scott:tiger@db", "database.url"),
        ("RENKEI_WEBAUTHN_RP_ID", "Portal.Example", "webauthn.rp_id"),
        ("RENKEI_DISCLOSURE_THRESHOLD", "0", "disclosure.threshold"),
    ],
)
def test_a_refused_variable_is_named(variable: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(message)) as caught:
        load_settings(None, {variable: value})
    assert f"environment variable {variable}" in caught.value.en and variable in caught.value.ja
    assert value not in str(caught.value)


def test_a_file_that_is_not_utf8_stops_the_start(tmp_path: Path) -> None:
    (tmp_path / SETTINGS_FILE).write_bytes("[sessions]\n# 設定\n".encode("cp932"))
    with pytest.raises(SettingsError, match="not UTF-8"):
        load_settings(tmp_path, {})


def test_settings_errors_are_user_errors() -> None:
    assert issubclass(SettingsError, RenkeiError)
