import json
import logging
import os
from datetime import UTC, datetime

from maintenance_site.ops.correlation import get_correlation_id


class CorrelationIdFilter(logging.Filter):
    def filter(self, record):
        record.correlation_id = get_correlation_id()
        return True


SERVICE_NAME = os.environ.get("SERVICE_NAME", "").strip() or "maintenance-platform"  # seed 001's variable


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, correlation id, the service (SERVICE_NAME, which
    tells the platform's processes apart from others in a shared log store), and any `extra` fields."""

    _standard = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "correlation_id"}

    def format(self, record):
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "correlation_id": getattr(record, "correlation_id", get_correlation_id()),
            "service": SERVICE_NAME,
        }
        for key, value in record.__dict__.items():
            if key not in self._standard and not key.startswith("_"):
                entry[key] = value if isinstance(value, (str, int, float, bool, type(None))) else str(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)
