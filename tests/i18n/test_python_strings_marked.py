"""Refusals a person reads are marked for translation in the Python code too: a service's DomainError (and its
kinds), a model's or form's ValidationError, the API's own refusals and the back office's messages must not be
given a bare English sentence (a literal or an f-string); they go through gettext (issue 30). The scan reads the
syntax tree, so a marked message (`_("…") % {…}`), a variable or a stored message passes; only a sentence written
in place is reported, with its file and line."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APPS = ("maintenance_site", "assets", "workorders", "inventory", "sla", "scheduling", "scenarios")
# Code a person does not read in their language: migrations, and the operator's management commands (English).
SKIPPED_PARTS = {"migrations", "management"}
# Exceptions whose first argument (or message=/detail=) is a sentence shown to a person.
REFUSALS = {
    "DomainError",
    "InvalidInput",
    "PermissionDeniedError",
    "NotFound",
    "Conflict",
    "PreconditionFailed",
    "Unprocessable",
    "ServiceUnavailable",
    "ValidationError",
    "AuthenticationFailed",
    "PermissionDenied",
    "ParseError",
    "Http404",
    "HttpResponseBadRequest",
}
# The back office's messages: messages.success(request, …) and self.message_user(request, …).
MESSAGE_FUNCTIONS = {"success", "error", "warning", "info"}
SENTENCE = re.compile(r"[A-Za-z]{2,}\s+[A-Za-z]{2,}")


def _name(node) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _written_in_place(node) -> bool:
    """A literal sentence or an f-string whose literal parts make one: text no catalogue can hold."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return bool(SENTENCE.search(node.value))
    if isinstance(node, ast.JoinedStr):
        text = " ".join(part.value for part in node.values if isinstance(part, ast.Constant))
        return bool(SENTENCE.search(text))
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Mod):
        return _written_in_place(node.left)
    return False


def _messages_of(node):
    """The texts a refusal carries: its first argument, message=/detail=, and what their dicts and lists hold
    (a `fields` dict of lists, a ValidationError's dict)."""
    pending = list(node.args[:1])
    for keyword in node.keywords:
        if keyword.arg in ("message", "detail", "fields"):
            pending.append(keyword.value)
    texts = []
    while pending:
        candidate = pending.pop()
        if isinstance(candidate, ast.Dict):
            pending.extend(value for value in candidate.values if value is not None)
        elif isinstance(candidate, ast.List | ast.Tuple):
            pending.extend(candidate.elts)
        else:
            texts.append(candidate)
    return texts


def unmarked_messages(source: str) -> list[tuple[int, str]]:
    """(line, text) of each refusal or back-office message written in place in `source`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        name = _name(node.func)
        if name in REFUSALS:
            texts = _messages_of(node)
        elif name == "message_user" or (
            name in MESSAGE_FUNCTIONS and isinstance(node.func, ast.Attribute) and _name(node.func.value) == "messages"
        ):
            texts = node.args[1:2]
        else:
            continue
        found += [(text.lineno, ast.unparse(text)[:100]) for text in texts if _written_in_place(text)]
    found.sort()
    return found


def _sources():
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if not SKIPPED_PARTS & set(path.relative_to(ROOT).parts):
                yield path


def test_no_refusal_or_back_office_message_is_written_in_place():
    found = [
        f"{path.relative_to(ROOT)}:{line}: {text}"
        for path in _sources()
        for line, text in unmarked_messages(path.read_text())
    ]
    assert found == []


def test_the_scan_finds_a_sentence_written_in_place_and_passes_a_marked_one():
    source = """
def refuse(key, request):
    raise InvalidInput(f"No preset “{key}” here.", fields={"key": ["Unknown preset."]})
    raise Conflict(_("No preset “%(key)s” here.") % {"key": key}, code="unknown")
    raise ValidationError({"end": "The end must be after the start."})
    raise ValidationError(exc.message)
    messages.success(request, f"Revoked {count} key(s).")
    self.message_user(request, _("Done."), messages.SUCCESS)
    raise InvalidInput("x", fields={"key": ["OK"]})
"""
    assert [line for line, _ in unmarked_messages(source)] == [3, 3, 5, 7]
