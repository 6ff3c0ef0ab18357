"""The portal's message catalogs (Babel .po files): complete in both languages, and every key in use present.

Keys used literally (``t("login.title")``) are found with Babel's own Jinja2 extractor; keys built from a value
(``t("state.application." ~ a.state)``) are checked against the values they can take.
"""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from renkei.hub.access.applications import ApplicationState, PartState
from renkei.hub.access.grants import GrantStatus
from renkei.hub.access.people import Role
from renkei.web.i18n import LANGUAGES, LOCALES, catalog, translator
from renkei.web.templating import CLOSED_UNDECIDED

WEB = Path(__file__).resolve().parents[2] / "src" / "renkei" / "web"


def used_keys() -> set[str]:
    found = extract_from_dir(str(WEB / "templates"), method_map=[("**.html", "jinja2")], keywords={"t": None})
    return {str(message) for _file, _line, message, _comments, _context in found}


def test_both_catalogs_hold_the_same_keys_all_translated() -> None:
    keys = [set(catalog(language)) for language in LANGUAGES]
    assert keys[0] == keys[1]
    for language in LANGUAGES:
        with (LOCALES / language / "LC_MESSAGES" / "messages.po").open("rb") as po:
            entries = [m for m in read_po(po) if m.id]
        assert all(m.string and not m.fuzzy for m in entries), language
        assert len(entries) == len(keys[0]), f"{language}: a key twice"


def test_every_key_the_templates_use_is_in_the_catalogs() -> None:
    used = used_keys()
    assert len(used) > 100, "the extractor found the templates' keys"
    assert used - set(catalog("ja")) == set()


def test_keys_built_from_states_roles_and_treatments_exist() -> None:
    built = {
        *(f"state.application.{s}" for s in ApplicationState),
        *(f"state.part.{s}" for s in PartState),
        "state.part.not_submitted",
        *(f"state.grant.{s}" for s in GrantStatus),
        *(f"role.{r}" for r in Role),
        *(f"audit.result.{r}" for r in ("ok", "denied")),
    }
    assert built - set(catalog("ja")) == set()
    assert {str(s) for s in ApplicationState} >= CLOSED_UNDECIDED


def test_placeholders_agree_between_the_languages() -> None:
    fields = re.compile(r"\{(\w+)\}")
    for key, japanese in catalog("ja").items():
        assert set(fields.findall(japanese)) == set(fields.findall(catalog("en")[key])), key


def test_english_messages_read_as_sentences() -> None:
    t = translator("en")
    assert [key for key in catalog("en") if t(key)[:1].islower()] == []
