"""The API's JSON parser: DRF's, bounded. The body may not exceed DATA_UPLOAD_MAX_MEMORY_SIZE (Django enforces
it for forms only, DRF reads JSON straight from the stream) nor nest deeper than MAX_DEPTH (Python's parser
recurses, so 10,000 levels would end in a RecursionError, a 500)."""

import codecs

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.utils.translation import gettext as _
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.utils import json  # DRF's wrapper: strict about NaN and Infinity

MAX_DEPTH = 64


def nesting_depth(value) -> int:
    """How deeply lists and objects nest in `value` (a scalar is 0), without recursion."""
    deepest = 0
    pending = [(value, 1)] if isinstance(value, dict | list) else []
    while pending:
        item, depth = pending.pop()
        deepest = max(deepest, depth)
        children = item.values() if isinstance(item, dict) else item
        pending.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return deepest


def too_deep() -> str:
    return _("JSON parse error - the body nests deeper than %(depth)s levels.") % {"depth": MAX_DEPTH}


class BoundedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read() if limit is None else stream.read(limit + 1)
        if limit is not None and len(raw) > limit:
            raise RequestDataTooBig(f"The request body exceeds {limit} bytes.")
        try:
            text = codecs.decode(raw, encoding)
            parse_constant = json.strict_constant if self.strict else None
            data = json.loads(text, parse_constant=parse_constant)
        except RecursionError:
            raise ParseError(too_deep()) from None
        except ValueError as exc:
            raise ParseError(_("JSON parse error - %(reason)s") % {"reason": exc}) from None
        if nesting_depth(data) > MAX_DEPTH:
            raise ParseError(too_deep())
        return data
