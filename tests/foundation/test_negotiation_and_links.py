"""Two answers the API keeps per process instead of working them out per request, each the same as DRF's: the
renderer chosen for the common Accept headers (maintenance_site.api.negotiation) and the next page's link of a cursor
list (maintenance_site.api.pagination.next_link)."""

import pytest
from django.http import Http404
from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BrowsableAPIRenderer
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory
from rest_framework.utils.urls import remove_query_param, replace_query_param

from maintenance_site.api import negotiation
from maintenance_site.api.pagination import next_link
from maintenance_site.api.renderers import JSONRenderer

ACCEPTS = [
    None,
    "*/*",
    "application/json",
    "text/html",
    "application/json; indent=4",
    "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "application/*",
    "",
]


def _request(accept=None, query=""):
    headers = {} if accept is None else {"HTTP_ACCEPT": accept}
    return Request(APIRequestFactory().get("/api/v1/work-orders/" + query, **headers))


def _choice(negotiator, request, renderers, suffix=None):
    try:
        renderer, media_type = negotiator.select_renderer(request, renderers, suffix)
    except (NotAcceptable, Http404) as exc:
        return type(exc)
    return type(renderer), media_type


@pytest.mark.parametrize("accept", ACCEPTS)
@pytest.mark.parametrize("query", ["", "?format=json", "?format=api", "?format=xml", "?format="])
@pytest.mark.parametrize("renderers", [(JSONRenderer, BrowsableAPIRenderer), (BrowsableAPIRenderer, JSONRenderer)])
def test_the_renderer_chosen_is_drfs_asked_once_or_again(accept, query, renderers):
    negotiation._forget()
    expected = _choice(DefaultContentNegotiation(), _request(accept, query), [cls() for cls in renderers])
    for _ in range(2):  # worked out, then kept
        chosen = _choice(negotiation.ContentNegotiation(), _request(accept, query), [cls() for cls in renderers])
        assert chosen == expected


def test_a_format_suffix_is_negotiated_by_drf():
    renderers = [JSONRenderer(), BrowsableAPIRenderer()]
    for suffix in ("api", "json"):
        expected = _choice(DefaultContentNegotiation(), _request(), renderers, suffix)
        assert _choice(negotiation.ContentNegotiation(), _request(), renderers, suffix) == expected
    assert expected[0] is JSONRenderer


def test_only_the_common_accept_headers_are_kept_whatever_clients_send():
    negotiation._forget()
    renderers = [JSONRenderer(), BrowsableAPIRenderer()]
    for index in range(50):
        negotiation.ContentNegotiation().select_renderer(_request(f"application/json; x={index}"), renderers)
        negotiation.ContentNegotiation().select_renderer(_request("*/*", f"?format=json&n={index}"), renderers)
    negotiation.ContentNegotiation().select_renderer(_request(), renderers)
    assert list(negotiation._chosen) == [(None, JSONRenderer, BrowsableAPIRenderer)]


def test_the_api_answers_json_or_the_browsable_page_as_before(client, django_user_model):
    # an unauthenticated list: the 401 envelope, in the negotiated format
    json_answer = client.get("/api/v1/work-orders/", HTTP_ACCEPT="application/json")
    assert json_answer["Content-Type"] == "application/json"
    assert client.get("/api/v1/work-orders/")["Content-Type"] == "application/json"
    html = client.get("/api/v1/work-orders/", HTTP_ACCEPT="text/html")
    assert html["Content-Type"].startswith("text/html")


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
