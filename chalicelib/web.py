"""Server-rendered pages: one Jinja2 environment per language, each built on first use (keeps cold start light).

Templates mark their text with ``{% trans %}`` / ``_()`` (jinja2.ext.i18n); the environment of a locale carries
that locale's gettext catalog (chalicelib/i18n.py).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chalice import Response

from chalicelib.domain.providers import label as provider_label
from chalicelib.i18n import DEFAULT, supported, translations

if TYPE_CHECKING:
    from jinja2 import Environment

TEMPLATES = Path(__file__).parent / "templates"

SECURITY_HEADERS = {
    "Content-Type": "text/html; charset=utf-8",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' https: data:; style-src 'self' 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@cache
def environment(locale: str = DEFAULT) -> Environment:
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html", "xml", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.i18n"],
    )
    env.policies["ext.i18n.trimmed"] = True  # {% trans %} blocks wrap like HTML: one msgid per sentence
    words = translations(locale)
    env.install_gettext_translations(words, newstyle=True)  # type: ignore[attr-defined]
    # A word of the data (a status, a delivery outcome) shown in the page's language; unknown words as they are.
    # A filter rather than _(value): its result is escaped like any other value.
    env.filters["term"] = lambda value: words.gettext(str(value).replace("_", " "))
    # A bank-link provider's name as the console shows it (from the registry; a key it no longer holds as is).
    env.filters["provider"] = lambda value: provider_label(str(value))
    # A validation message of the API's (an import row's reason) in words (chalicelib/api/forms.py).
    from chalicelib.api.forms import human_message

    env.filters["human"] = lambda value: human_message(str(value), words.gettext)
    env.filters["filesize"] = lambda value: file_size(int(value), locale)
    return env


_SIZE_UNITS = {"en": ("byte", "bytes", "KB", "MB", "."), "fr": ("octet", "octets", "Ko", "Mo", ",")}


def file_size(size: int, locale: str = DEFAULT) -> str:
    """A file's size as people read it: bytes under 1 KB, then KB or MB with at most one decimal."""
    one, many, kb, mb, point = _SIZE_UNITS.get(locale, _SIZE_UNITS["en"])
    if size < 1024:
        return f"{size} {one if size == 1 else many}"
    value, unit = (size / 1024, kb) if size < 1024 * 1024 else (size / (1024 * 1024), mb)
    shown = f"{value:.1f}".removesuffix(".0")
    return f"{shown.replace('.', point)} {unit}"


def render(template: str, **context: Any) -> str:
    """``locale`` (English unless given) picks the catalog; the template gets it too (``<html lang>``)."""
    locale = supported(context.pop("locale", None))
    return environment(locale).get_template(template).render(locale=locale, **context)


def page(template: str, status: int = 200, headers: dict[str, str] | None = None, **context: Any) -> Response:
    return Response(
        body=render(template, **context),
        status_code=status,
        headers={**SECURITY_HEADERS, "Content-Language": supported(context.get("locale")), **(headers or {})},
    )
