"""British English: the project's one date/time format (maintenance_site.formats) and ISO date inputs."""

from maintenance_site.formats import DATE, DATE_TIME, ISO_DATE_INPUT, TIME

DATE_FORMAT = DATE
DATETIME_FORMAT = DATE_TIME
TIME_FORMAT = TIME
SHORT_DATE_FORMAT = "Y-m-d"
SHORT_DATETIME_FORMAT = "Y-m-d H:i"
# the first is what date widgets show; the others are accepted too
DATE_INPUT_FORMATS = [ISO_DATE_INPUT, "%d/%m/%Y", "%d/%m/%y"]
DATETIME_INPUT_FORMATS = [
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M:%S.%f",
    "%Y-%m-%d %H:%M",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
]
TIME_INPUT_FORMATS = ["%H:%M:%S", "%H:%M:%S.%f", "%H:%M"]
FIRST_DAY_OF_WEEK = 1  # Monday
