"""One way to write a date and a time across the back office, the technician's phone view and e-mails:
"Sat 5 Dec 2026, 19:04", in the organisation's time zone (the back office activates it per request; e-mails and the
phone view convert explicitly). Date inputs in the admin are ISO (YYYY-MM-DD). The locale format module
(settings.FORMAT_MODULE_PATH, maintenance_site/locale_formats) gives Django's `date` filter and the admin the same
formats, one module per language the platform speaks (settings.LANGUAGES): the same rule in each, with the names of
days and months, and the numbers, of the active language ("lun 7 dic 2026, 19:04" in Spanish; the language is chosen
per person by maintenance_site.i18n)."""

from django.utils import dateformat, timezone
from django.utils.formats import get_format

DATE_TIME = "D j M Y, H:i"  # Sat 5 Dec 2026, 19:04
DATE = "D j M Y"  # Sat 5 Dec 2026
TIME = "H:i"
ISO_DATE_INPUT = "%Y-%m-%d"


def date_time(value, zone=None) -> str:
    """`value` (an aware datetime) as "Sat 5 Dec 2026, 19:04" in `zone` (default: the active time zone)."""
    if value is None:
        return ""
    return dateformat.format(timezone.localtime(value, zone), get_format("DATETIME_FORMAT"))


def date(value) -> str:
    return dateformat.format(value, get_format("DATE_FORMAT")) if value is not None else ""
