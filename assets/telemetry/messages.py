"""An anomaly's sentence in the reader's language. The detectors write `Anomaly.message` in English, in the hot loop,
from the fixed sentences below (`assets.telemetry.detection`); it stays stored as written (the API's field, the
history). Whoever shows it to a person — the notification, the API's `message_text`, the admin, the health
check — calls `localized(message)`: the sentence is recognised here, its numbers taken out and written again in
the active language ("12.5" → "12,5"). A sentence not recognised (written by an older version) is shown as stored.

Render on read rather than store a code: no migration, no cost in the detectors' loop, and the anomalies already
stored read in Spanish too. `tests/i18n/test_stored_messages.py` runs every detector and checks each sentence it
writes is recognised, so a detector's sentence cannot change without this table."""

import re
from decimal import Decimal, InvalidOperation

from django.utils.formats import number_format
from django.utils.functional import lazy
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

NUMBER = r"(?P<{}>-?(?:inf|nan|[0-9.]+(?:e[+-]?[0-9]+)?))"
SEVERITIES = {"warning": pgettext_lazy("limit", "warning"), "critical": pgettext_lazy("limit", "critical")}


def _pattern(english: str) -> re.Pattern:
    """ "{value} is above the {severity} limit {limit}" → a regex naming each part."""
    parts = re.split(r"\{(\w+)\}", english)
    regex = ""
    for index, part in enumerate(parts):
        if index % 2 == 0:
            regex += re.escape(part)
        elif part == "severity":
            regex += r"(?P<severity>warning|critical)"
        else:
            regex += NUMBER.format(part)
    return re.compile(f"^{regex}$")


# (the English sentence the detectors write, its translation with the same names)
SENTENCES = [
    ("{value} is above the {severity} limit {limit}", _("%(value)s is above the %(severity)s limit %(limit)s")),
    ("{value} is below the {severity} limit {limit}", _("%(value)s is below the %(severity)s limit %(limit)s")),
    (
        "{value} is outside the sensor's range: check the sensor and its wiring",
        _("%(value)s is outside the sensor's range: check the sensor and its wiring"),
    ),
    ("changed by {rate} per minute (limit {limit})", _("changed by %(rate)s per minute (limit %(limit)s)")),
    (
        "{value} unchanged for {minutes} minutes: is the sensor stuck?",
        _("%(value)s unchanged for %(minutes)s minutes: is the sensor stuck?"),
    ),
    ("{value} is {sigmas} σ from the baseline {mean}", _("%(value)s is %(sigmas)s σ from the baseline %(mean)s")),
    (
        "the recent average {average} drifted {sigmas} σ from the baseline {mean}",
        _("the recent average %(average)s drifted %(sigmas)s σ from the baseline %(mean)s"),
    ),
]
PATTERNS = [(_pattern(english), translated) for english, translated in SENTENCES]


def _number(text: str) -> str:
    try:
        value = Decimal(text)
    except InvalidOperation:
        return text
    if not value.is_finite():
        return text
    return number_format(value, force_grouping=False)


def localized(message: str) -> str:
    """`message` (as a detector wrote it) in the active language; unchanged when it is not one of SENTENCES."""
    for pattern, translated in PATTERNS:
        match = pattern.match(message or "")
        if match is None:
            continue
        values = {
            name: str(SEVERITIES[text]) if name == "severity" else _number(text)
            for name, text in match.groupdict().items()
        }
        return str(translated) % values
    return message


lazy_localized = lazy(localized, str)
