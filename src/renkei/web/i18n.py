"""Japanese first, English on request: ``?lang=en`` (remembered in a cookie), else the browser's first language.

The pages' words are in gettext message catalogs, one per language, read with Babel:
``locale/ja/LC_MESSAGES/messages.po`` (the default) and ``locale/en/LC_MESSAGES/messages.po``. The msgids are
message keys (``login.title``); templates call ``t("login.title")`` (:func:`translator`). Each English entry
carries the Japanese as a comment for the translator. JSON errors carry both languages, so the API needs no
negotiation.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from babel.messages.pofile import read_po
from starlette.requests import HTTPConnection

Language = Literal["ja", "en"]
LANG_COOKIE = "__Host-renkei_lang"
LANGUAGES: tuple[Language, ...] = ("ja", "en")

LOCALES = Path(__file__).parent / "locale"  # <language>/LC_MESSAGES/messages.po, read with Babel
DOMAIN = "messages"


@functools.cache
def catalog(language: Language) -> dict[str, str]:
    """The message catalog of ``language``: key -> text (a key without a translation is left out)."""
    path = LOCALES / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    with path.open("rb") as po:
        messages = read_po(po, locale=language, domain=DOMAIN)
    return {str(m.id): str(m.string) for m in messages if m.id and m.string and not m.fuzzy}


def language_of(connection: HTTPConnection) -> Language:
    """``?lang=`` first, then the remembered choice, then the first language the browser asks for."""
    for candidate in (connection.query_params.get("lang"), connection.cookies.get(LANG_COOKIE)):
        if candidate in LANGUAGES:
            return "en" if candidate == "en" else "ja"
    first = connection.headers.get("accept-language", "").split(",")[0].strip().lower()
    return "en" if first.startswith("en") else "ja"


def translator(language: Language) -> Callable[..., str]:
    """``t(key)``, or ``t(key, name=value …)`` for a message with ``{name}`` fields (values are the page's).

    A key missing from the catalog is an error (KeyError), never shown as the key: tests/unit/test_messages.py
    checks that every key the templates use is in both catalogs.
    """
    messages = catalog(language)

    def t(key: str, **values: object) -> str:
        text = messages[key]
        return text.format(**values) if values else text

    return t


def both(key: str) -> tuple[str, str]:
    return catalog("ja")[key], catalog("en")[key]


def has_message(key: str) -> bool:
    return key in catalog("ja")
