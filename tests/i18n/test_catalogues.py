"""The "complete Spanish" claim, kept true: every entry of the Spanish catalogues (the technician view, its script,
notifications, e-mails, API errors) is translated and none is fuzzy; no text of the technician view's templates is
left unmarked; the .mo files are what the .po files say (compiled by maintenance_site.translations, no gettext)."""

import html
import re
from pathlib import Path

import pytest
from django.template.base import Lexer, TokenType
from django.utils import translation

from maintenance_site.translations import LOCALE_DIR, catalogues, compile_catalogues, completeness, read

ROOT = Path(__file__).resolve().parents[2]
TECHNICIAN_TEMPLATES = sorted((ROOT / "templates" / "technician").glob("*.html"))
PLACEHOLDER = "\x00"
# What a person reads inside a tag.
READ_ATTRIBUTES = re.compile(r'\b(?:aria-label|title|placeholder|alt)="([^"]*)"')
WORDS = re.compile(r"[A-Za-z]{2,}")
# Blocks of base.html that hold attributes or a page's name for the scripts, not text.
DATA_BLOCKS = {"page", "body_data", "scripts"}


def test_both_spanish_catalogues_are_there():
    names = {path.relative_to(LOCALE_DIR).as_posix() for path in catalogues()}
    assert {"es/LC_MESSAGES/django.po", "es/LC_MESSAGES/djangojs.po"} <= names


# What is complete in Spanish: the technician view (templates, views, forms, JSON answers, script, service worker),
# notifications and e-mails, the API's error envelope, the work-order and tenancy refusals, the labels those show.
COMPLETE = (
    "templates/technician/",
    "workorders/technician_",
    "workorders/static/technician/",
    "inventory/technician_",
    "maintenance_site/notifications/",
    "maintenance_site/api/exceptions.py",
    "maintenance_site/tenancy/services.py",
    "maintenance_site/tenancy/roles.py",
    "workorders/services.py",
)


@pytest.mark.parametrize("po_path", catalogues(), ids=lambda path: path.relative_to(LOCALE_DIR).as_posix())
def test_every_entry_of_the_technician_view_and_the_notices_is_translated_and_none_is_fuzzy(po_path):
    gaps = completeness(po_path, COMPLETE)
    assert gaps == {"empty": [], "fuzzy": []}, f"{po_path}: untranslated or fuzzy entries"


@pytest.mark.parametrize("po_path", catalogues(), ids=lambda path: path.relative_to(LOCALE_DIR).as_posix())
def test_the_spanish_catalogues_are_complete_today(po_path):
    """Everything the catalogues hold is translated, the admin's labels and help texts included."""
    assert completeness(po_path) == {"empty": [], "fuzzy": []}


@pytest.mark.parametrize("po_path", catalogues(), ids=lambda path: path.relative_to(LOCALE_DIR).as_posix())
def test_placeholders_survive_translation(po_path):
    """A msgstr names the same %(name)s / {name} placeholders as its msgid (a typo would raise at run time)."""
    pattern = re.compile(r"%\(\w+\)s|\{\w+\}")
    wrong = []
    for message in read(po_path):
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        expected = set(pattern.findall(ids[-1]))
        wrong += [(ids[0], text) for text in strings if set(pattern.findall(text)) != expected]
    assert wrong == []


def test_the_compiled_catalogues_are_what_the_po_files_say(tmp_path):
    """Compiled from the committed .po: Spanish answers come from them."""
    compile_catalogues()
    for po_path in catalogues():
        assert po_path.with_suffix(".mo").stat().st_mtime >= po_path.stat().st_mtime
    with translation.override("es"):
        assert translation.gettext("My work") == "Mi trabajo"
        assert translation.pgettext("history", "Start") == "Inicio"
        assert translation.ngettext("%(count)s notification(s) today", "%(count)s notification(s) today", 3) % {
            "count": 3
        } == ("3 notificaciones hoy")


def unmarked_texts(source: str) -> list[str]:
    """The texts of a template a person reads that are outside {% translate %} / {% blocktranslate %}."""
    parts, skipping = [], None  # skipping: the end tag of the block whose text is not checked
    for token in Lexer(source).tokenize():
        contents = token.contents.strip()
        if token.token_type == TokenType.BLOCK:
            words = contents.split()
            if skipping is None and words[0] in ("blocktranslate", "blocktrans"):
                skipping = "end" + words[0]
            elif skipping is None and words[0] == "block" and words[1] in DATA_BLOCKS:
                skipping = "endblock"
            elif skipping == words[0]:
                skipping = None
            parts.append(PLACEHOLDER)
        elif token.token_type == TokenType.TEXT and skipping is None:
            parts.append(token.contents)
        else:
            parts.append(PLACEHOLDER)
    text = "".join(parts)
    found = [value for value in READ_ATTRIBUTES.findall(text) if WORDS.search(value.replace(PLACEHOLDER, " "))]
    visible = html.unescape(re.sub(r"<[^>]*>", PLACEHOLDER, text))
    found += [piece.strip() for piece in visible.split(PLACEHOLDER) if WORDS.search(piece)]
    return found


@pytest.mark.parametrize("template", TECHNICIAN_TEMPLATES, ids=lambda path: path.name)
def test_no_text_of_the_technician_view_is_left_unmarked(template):
    assert unmarked_texts(template.read_text()) == []


def test_the_check_finds_an_unmarked_text():
    source = (
        '{% load i18n %}<p title="Open it">{% translate "Fine" %} Forgotten</p>'
        "{% blocktranslate %}Ok{% endblocktranslate %}"
    )
    assert unmarked_texts(source) == ["Open it", "Forgotten"]
