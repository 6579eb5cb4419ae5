"""The next page's link of a cursor list (maintenance_site.api.pagination.next_link), written from a template kept per
URL: the link DRF's `remove_query_param` and `replace_query_param` write, whatever the URL asked."""

import pytest
from rest_framework.utils.urls import remove_query_param, replace_query_param

from maintenance_site.api.pagination import next_link


def _drf_link(url, cursor):
    return replace_query_param(remove_query_param(url, "page"), "cursor", cursor)


@pytest.mark.parametrize(
    "url",
    [
        "http://testserver/api/v1/work-orders/",
        "http://testserver/api/v1/work-orders/?status=open&priority=high",
        "http://testserver/api/v1/work-orders/?priority=high&status=open&status=assigned",
        "http://testserver/api/v1/work-orders/?cursor=eyJvIjpbIi1jcmVhdGVkX2F0Il19&page=3&search=PMP%2B1",
        "http://testserver/api/v1/work-orders/?search=caf%C3%A9+d%27%C3%A9t%C3%A9&empty=&z=1",
        "https://api.example.org:8443/api/v1/work-orders/?page_size=10#frag",
        "http://testserver/api/v1/work-orders/?x=%00cursor%00",  # the template's slot itself: DRF writes it
    ],
)
def test_the_next_link_is_drfs(url):
    for cursor in ("eyJvIjpbIi1jcmVhdGVkX2F0IiwiLWlkIl0sInYiOlsxLDJdfQ", "a-b_c", "eyJ9"):
        for _ in range(2):  # written, then from the kept template
            assert next_link(url, "page", "cursor", cursor) == _drf_link(url, cursor)


def test_the_templates_kept_are_bounded(monkeypatch):
    from maintenance_site.api import pagination

    monkeypatch.setattr(pagination, "NEXT_LINKS", 3)
    monkeypatch.setattr(pagination, "_next_links", {})
    urls = [f"http://testserver/api/v1/work-orders/?status=open&n={index}" for index in range(5)]
    for url in urls:
        assert next_link(url, "page", "cursor", "abc") == _drf_link(url, "abc")
    assert [key[0] for key in pagination._next_links] == urls[2:]
