"""The translation catalogues: `.po` files are committed (maintenance_site/locale/<language>/LC_MESSAGES), `.mo`
files are compiled from them here with Babel, so a fresh clone needs no gettext binaries (`msgfmt` is missing
from slim images). `make install`, `make run`, `make test`, the Dockerfile and the test session compile what is
stale; `completeness()` is what the test of the "complete Spanish" claim reads."""

import os
import tempfile
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALE_DIR = Path(__file__).resolve().parent / "locale"


def catalogues(locale_dir: Path = LOCALE_DIR) -> list[Path]:
    return sorted(locale_dir.glob("*/LC_MESSAGES/*.po"))


def read(po_path: Path):
    with po_path.open("rb") as handle:
        return read_po(handle, locale=po_path.parent.parent.name)


def compile_catalogues(*, force: bool = False, locale_dir: Path = LOCALE_DIR) -> list[Path]:
    """Write each `.po`'s `.mo` when it is missing or older (fuzzy entries left out, as msgfmt does); returns the
    `.mo` files written. Atomic (a temporary file renamed), so two test processes may run it at once."""
    written = []
    for po_path in catalogues(locale_dir):
        mo_path = po_path.with_suffix(".mo")
        if not force and mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        catalogue = read(po_path)
        descriptor, temporary = tempfile.mkstemp(dir=mo_path.parent, suffix=".mo.tmp")
        try:
            with os.fdopen(descriptor, "wb") as handle:
                write_mo(handle, catalogue, use_fuzzy=False)
            os.replace(temporary, mo_path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        written.append(mo_path)
    return written


def completeness(po_path: Path, sources: tuple[str, ...] = ()) -> dict[str, list[str]]:
    """The entries of a catalogue that are not translated: {"empty": [msgid…], "fuzzy": [msgid…]}. With `sources`
    (path prefixes), only the entries used by one of them count as empty; a fuzzy entry always counts."""
    empty, fuzzy = [], []
    for message in read(po_path):
        if not message.id:
            continue  # the header
        if sources and not message.fuzzy and not any(path.startswith(sources) for path, _line in message.locations):
            continue
        msgid = message.id if isinstance(message.id, str) else message.id[0]
        strings = message.string if isinstance(message.string, tuple | list) else (message.string,)
        if message.fuzzy:
            fuzzy.append(msgid)
        elif not all(strings):
            empty.append(msgid)
    return {"empty": empty, "fuzzy": fuzzy}
