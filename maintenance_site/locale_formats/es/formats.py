"""Spanish: the project's one date/time rule (maintenance_site.formats: weekday, day, month, year, 24-hour time —
"lun 7 dic 2026, 19:04"), day-first short dates, and Spanish numbers (decimal comma, thousands point)."""

from maintenance_site.formats import DATE, DATE_TIME, ISO_DATE_INPUT, TIME

DATE_FORMAT = DATE
DATETIME_FORMAT = DATE_TIME
TIME_FORMAT = TIME
SHORT_DATE_FORMAT = "d/m/Y"
SHORT_DATETIME_FORMAT = "d/m/Y H:i"
# the first is what date widgets show (ISO, as in every language); the others are accepted too
DATE_INPUT_FORMATS = [ISO_DATE_INPUT, "%d/%m/%Y", "%d/%m/%y"]
DATETIME_INPUT_FORMATS = [
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M:%S.%f",
    "%Y-%m-%d %H:%M",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
]
TIME_INPUT_FORMATS = ["%H:%M:%S", "%H:%M:%S.%f", "%H:%M"]
FIRST_DAY_OF_WEEK = 1  # lunes
DECIMAL_SEPARATOR = ","
THOUSAND_SEPARATOR = "."
NUMBER_GROUPING = 3
