"""One way to write a date and a time across the back office, the technician's phone view and e-mails:
"Sat 5 Dec 2026, 19:04", in the organisation's time zone (the back office activates it per request; e-mails and the
phone view convert explicitly). Date inputs in the admin are ISO (YYYY-MM-DD). The locale format module
(settings.FORMAT_MODULE_PATH, maintenance_site/locale_formats) gives Django's `date` filter and the admin the same
formats; a per-user language (the technician i18n work) would add its own module next to it."""

from django.utils import dateformat, timezone

DATE_TIME = "D j M Y, H:i"  # Sat 5 Dec 2026, 19:04
DATE = "D j M Y"  # Sat 5 Dec 2026
TIME = "H:i"
ISO_DATE_INPUT = "%Y-%m-%d"


def date_time(value, zone=None) -> str:
    """`value` (an aware datetime) as "Sat 5 Dec 2026, 19:04" in `zone` (default: the active time zone)."""
    if value is None:
        return ""
    return dateformat.format(timezone.localtime(value, zone), DATE_TIME)


def date(value) -> str:
    return dateformat.format(value, DATE) if value is not None else ""
