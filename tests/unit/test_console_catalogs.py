"""The console's French catalog is complete and compiled: every string marked in the console's templates and Python
is in the .pot, has a French translation that is neither empty nor fuzzy and keeps its placeholders, and the committed
.mo (what the runtime reads, with the standard library alone) says the same as the .po. Fails until someone runs
``make catalogs`` and translates what is new."""

from __future__ import annotations

import gettext
import re
from pathlib import Path

import pytest
from babel.messages.catalog import Message
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from chalicelib.i18n import DOMAIN, LOCALE_DIR, LOCALES, negotiate, translations

ROOT = Path(__file__).resolve().parents[2]
POT = LOCALE_DIR / f"{DOMAIN}.pot"
PLACEHOLDER = re.compile(r"%\((\w+)\)s")
TRANSLATED = [locale for locale in LOCALES if locale != "en"]


def _key(message_id: str | tuple[str, ...], context: str | None) -> tuple[str | None, str]:
    return context, message_id if isinstance(message_id, str) else message_id[0]


def marked_in_code() -> set[tuple[str | None, str]]:
    """What ``pybabel extract -F babel.cfg`` finds today."""
    with (ROOT / "babel.cfg").open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg, "babel.cfg")
    found = set()
    for _filename, _lineno, message, _comments, context in extract_from_dir(
        str(ROOT), method_map, options_map, directory_filter=lambda d: Path(d).name not in {".venv", "build", "tests"}
    ):
        found.add(_key(message, context))
    return found


def catalog(path: Path) -> dict[tuple[str | None, str], Message]:
    with path.open("rb") as f:
        po = read_po(f)
    return {_key(m.id, m.context): m for m in po if m.id}


def forms(message: Message) -> list[str]:
    return [str(s) for s in message.string] if isinstance(message.string, tuple) else [str(message.string or "")]


def test_the_template_lists_every_marked_string() -> None:
    in_code, in_pot = marked_in_code(), set(catalog(POT))
    assert len(in_code) > 300, "the extraction found almost nothing: is babel.cfg still right?"
    assert not in_code - in_pot, f"run `make catalogs`: not in {POT.name}: {sorted(m for _, m in in_code - in_pot)}"
    assert not in_pot - in_code, f"run `make catalogs`: no longer used: {sorted(m for _, m in in_pot - in_code)}"


@pytest.mark.parametrize("locale", TRANSLATED)
def test_every_string_is_translated_and_compiled(locale: str) -> None:
    po = catalog(LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po")
    compiled = translations(locale)
    with (LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.mo").open("rb") as f:
        assert isinstance(gettext.GNUTranslations(f), gettext.GNUTranslations)
    problems = []
    for key, source in catalog(POT).items():
        context, msgid = key
        message = po.get(key)
        if message is None or not all(forms(message)) or message.fuzzy:
            problems.append(f"untranslated or fuzzy: {msgid!r}")
            continue
        for string in forms(message):
            if sorted(PLACEHOLDER.findall(string)) != sorted(PLACEHOLDER.findall(msgid)):
                problems.append(f"placeholders differ: {msgid!r} -> {string!r}")
        if isinstance(source.id, tuple):  # a plural: one form for 1, another for 2
            shown = [compiled.ngettext(source.id[0], source.id[1], n) for n in (1, 2)]
            expected = [forms(message)[po_index(locale, n)] for n in (1, 2)]
        else:
            shown = [compiled.pgettext(context, msgid) if context else compiled.gettext(msgid)]
            expected = forms(message)
        if shown != expected:
            problems.append(
                f"the .mo is stale (run `make catalogs`): {msgid!r} -> {shown!r}, the .po says {expected!r}"
            )
    assert not problems, "\n".join(problems)


def po_index(locale: str, n: int) -> int:
    """Which plural form the .po's own Plural-Forms rule picks for ``n``."""
    with (LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po").open("rb") as f:
        rule = read_po(f).plural_expr
    return int(gettext.c2py(rule)(n))


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "en"),
        ("", "en"),
        ("fr-CA,fr;q=0.9,en;q=0.8", "fr"),
        ("en-US,en;q=0.9,fr;q=0.8", "en"),
        ("de-DE,de;q=0.9,fr;q=0.5", "fr"),
        ("de, es", "en"),
        ("fr;q=0, en;q=0.1", "en"),
        ("en;q=0.4, FR-ca;q=0.6", "fr"),
        ("fr;q=nonsense, en;q=0.2", "en"),
        ("*", "en"),
    ],
)
def test_the_browser_language_is_matched_among_ours(header: str | None, expected: str) -> None:
    assert negotiate(header) == expected
