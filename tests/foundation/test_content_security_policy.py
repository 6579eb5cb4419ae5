"""The Content-Security-Policy header per path, and our templates kept free of what it forbids (inline scripts
without a nonce, event-handler attributes, `javascript:` links, style attributes). The browser proof is
tests/technician/test_csp_browser.py."""

import re
from pathlib import Path

import pytest
from django.test import Client

ROOT = Path(__file__).resolve().parents[2]


def directives(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in header.split(";") if part.strip()}


def assert_strict(policy: dict[str, list[str]]) -> None:
    for directive in ("script-src", "style-src"):
        assert "'unsafe-inline'" not in policy[directive] and "'unsafe-eval'" not in policy[directive], directive
    assert "style-src-attr" not in policy and "script-src-attr" not in policy
    assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]


@pytest.mark.django_db
def test_technician_public_and_docs_pages_are_strict(org_a):
    for path in ("/t/login/", f"/report/{org_a.request_form_token}/", "/api/docs/"):
        response = Client().get(path)
        assert response.status_code == 200, path
        assert_strict(directives(response))


@pytest.mark.django_db
def test_the_docs_page_runs_no_inline_script_and_its_style_carries_the_nonce():
    response = Client().get("/api/docs/")
    html = response.content.decode()
    policy = directives(response)
    nonce = re.search(r"'nonce-([^']+)'", " ".join(policy["style-src"]))[1]
    assert f'<style nonce="{nonce}">' in html
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)  # every script is a file
    script = Client().get("/api/docs/?script")
    assert script.status_code == 200 and script["Content-Type"].startswith("application/javascript")


@pytest.mark.django_db
def test_the_admin_allows_what_its_theme_needs_and_nothing_more():
    """django-unfold: Alpine.js's standard build evaluates expressions ('unsafe-eval'); its colour variables are a
    <style> block and its widgets write style attributes. Still no inline script."""
    policy = directives(Client().get("/admin/login/"))
    assert policy["style-src-attr"] == ["'unsafe-inline'"]
    assert policy["style-src-elem"] == ["'self'", "'unsafe-inline'"]
    assert "'unsafe-eval'" in policy["script-src"] and "'unsafe-inline'" not in policy["script-src"]
    assert "'unsafe-inline'" not in policy["style-src"]
    assert "script-src-attr" not in policy and "script-src-elem" not in policy


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/work-orders/", "/api/v1/", "/admin/login/", "/t/login/", "/healthz"])
def test_a_kept_policy_is_the_one_django_csp_builds(path, settings):
    """The headers a response without a policy of its own gets from the kept policies (PathPolicyMiddleware) are
    django-csp's for the same response, the first time and the next, report-only policy included."""
    from csp.middleware import CSPMiddleware

    from maintenance_site.security import csp

    settings.CONTENT_SECURITY_POLICY_REPORT_ONLY = {"DIRECTIVES": {"default-src": ["'self'"], "report-uri": "/r/"}}
    answers = [Client().get(path) for _ in range(2)]
    built = []

    def uncached(self, request, response):  # django-csp's own, with the path additions (no kept policies)
        response.headers.pop("Content-Security-Policy", None)
        response.headers.pop("Content-Security-Policy-Report-Only", None)
        CSPMiddleware.process_response(self, request, response)
        built.append(response)
        return response

    csp._policies.clear()
    original = csp.PathPolicyMiddleware.process_response
    csp.PathPolicyMiddleware.process_response = uncached
    try:
        Client().get(path)
    finally:
        csp.PathPolicyMiddleware.process_response = original
    for answer in answers:
        for header in ("Content-Security-Policy", "Content-Security-Policy-Report-Only"):
            assert answer.get(header) == built[0].get(header), (path, header)
    assert answers[0].get("Content-Security-Policy")


@pytest.mark.django_db
def test_a_changed_setting_is_not_answered_from_a_kept_policy(settings):
    before = directives(Client().get("/api/v1/"))
    settings.CONTENT_SECURITY_POLICY_PATHS = {"/api/": {"img-src": ["https://maps.example"]}}
    after = directives(Client().get("/api/v1/"))
    assert "https://maps.example" not in before["img-src"] and "https://maps.example" in after["img-src"]


@pytest.mark.django_db
def test_a_path_addition_applies_to_its_own_pages_only(settings):
    settings.CONTENT_SECURITY_POLICY_PATHS = {"/t/": {"img-src": ["https://maps.example"]}}
    assert "https://maps.example" in directives(Client().get("/t/login/"))["img-src"]
    assert "https://maps.example" not in directives(Client().get("/admin/login/"))["img-src"]


INLINE_SCRIPT = re.compile(r"<script(?![^>]*\b(?:src|nonce)=)(?![^>]*type=\"application/json\")[^>]*>", re.I)
FORBIDDEN = {
    "an inline <script> without a nonce": INLINE_SCRIPT,
    "a <style> block without a nonce": re.compile(r"<style(?![^>]*\bnonce=)[^>]*>", re.I),
    "a style attribute": re.compile(r"\sstyle=[\"']", re.I),
    "an event-handler attribute": re.compile(r"\son[a-z]+=[\"']", re.I),
    "a javascript: link": re.compile(r"javascript:", re.I),
}


@pytest.mark.parametrize("template", sorted(ROOT.joinpath("templates").rglob("*.html")), ids=lambda p: p.name)
def test_our_templates_need_no_unsafe_inline(template):
    text = template.read_text()
    found = [what for what, pattern in FORBIDDEN.items() if pattern.search(text)]
    assert not found, f"{template.relative_to(ROOT)} has {', '.join(found)}: move it to a static file or use a nonce"
