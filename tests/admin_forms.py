"""Admin forms as a browser submits them, for tests that post the back office's pages."""

import re
from html.parser import HTMLParser


class _FormScraper(HTMLParser):
    """The fields a browser would submit from the page's forms (inputs, selects, textareas)."""

    def __init__(self):
        super().__init__()
        self.data, self._select, self._textarea = {}, None, None

    def _add(self, name, value):
        self.data.setdefault(name, []).append(value)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        name = attrs.get("name")
        if tag == "input" and name and "disabled" not in attrs:
            kind = attrs.get("type", "text")
            if kind in ("submit", "button", "file", "image"):
                return
            if kind in ("checkbox", "radio") and "checked" not in attrs:
                return
            self._add(name, attrs.get("value", "on" if kind == "checkbox" else ""))
        elif tag == "select" and name and "disabled" not in attrs:
            self._select = {"name": name, "multiple": "multiple" in attrs, "first": None, "chosen": []}
        elif tag == "option" and self._select is not None:
            value = attrs.get("value", "")
            if self._select["first"] is None:
                self._select["first"] = value
            if "selected" in attrs:
                self._select["chosen"].append(value)
        elif tag == "textarea" and name:
            self._textarea = name
            self._add(name, "")

    def handle_endtag(self, tag):
        if tag == "select" and self._select is not None:
            select, self._select = self._select, None
            chosen = select["chosen"] or ([] if select["multiple"] else [select["first"] or ""])
            for value in chosen:  # an empty multiple select sends nothing, like a browser
                self._add(select["name"], value)
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data):
        if self._textarea:
            self.data[self._textarea][-1] += data


def form_data(response, **changes) -> dict:
    scraper = _FormScraper()
    scraper.feed(response.content.decode())
    data = {name: values if len(values) > 1 else values[0] for name, values in scraper.data.items()}
    data.pop("csrfmiddlewaretoken", None)
    for name, value in changes.items():
        if value is None:
            data.pop(name, None)
        else:
            data[name] = value
    return data


def page_text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())
