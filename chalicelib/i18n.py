"""The console's languages: gettext catalogs under ``chalicelib/locale`` and the choice of one per request.

The catalogs are compiled ``.mo`` files committed next to their ``.po`` sources, so the runtime needs only the
standard library's :mod:`gettext`; Babel (a dev dependency) extracts and compiles them (``make catalogs``).
The customer-facing join and portal pages keep their own word lists (``chalicelib/api/join_words.py``).
"""

from __future__ import annotations

import gettext
from functools import cache
from pathlib import Path

DOMAIN = "console"
LOCALE_DIR = Path(__file__).parent / "locale"
LOCALES = ("en", "fr")  # the source language first: it needs no catalog
DEFAULT = "en"


def N_(message: str) -> str:  # noqa: N802 - the name gettext tools look for
    """Mark a string for extraction where it is defined; it is translated where it is shown."""
    return message


def supported(locale: str | None) -> str:
    return locale if locale in LOCALES else DEFAULT


@cache
def translations(locale: str) -> gettext.NullTranslations:
    """The catalog of ``locale`` (English is the source text). A missing catalog raises: it is a packaging bug,
    not something to hide behind English."""
    locale = supported(locale)
    if locale == DEFAULT:
        return gettext.NullTranslations()
    return gettext.translation(DOMAIN, LOCALE_DIR, languages=[locale])


def negotiate(accept_language: str | None) -> str:
    """The best of :data:`LOCALES` for an ``Accept-Language`` header (RFC 9110 section 12.5.4), else English.

    ``fr-CA`` matches ``fr``; a higher quality wins, then the order the browser listed; ``q=0`` refuses.
    """
    best, best_q = DEFAULT, 0.0
    for item in (accept_language or "")[:1000].split(","):
        tag, _, params = item.strip().partition(";")
        language = tag.strip().lower().split("-")[0]
        if language not in LOCALES:
            continue
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > best_q:
            best, best_q = language, quality
    return best
