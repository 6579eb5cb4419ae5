"""Which language a person reads: their own choice, then their browser's Accept-Language, then the organisation's
default (maintenance_site.i18n); set in the technician view and the admin through one audited service; the API's
error envelope and the locale formats (dates, numbers, money) follow it."""

import datetime
import zoneinfo
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import translation

from maintenance_site import formats
from maintenance_site.errors import InvalidInput, PermissionDeniedError
from maintenance_site.i18n import language_for, money
from maintenance_site.tenancy import services as tenancy
from maintenance_site.tenancy.models import Profile
from workorders import services

MY_WORK = "/t/"


def signed_in(user, **headers) -> Client:
    client = Client(**headers)
    client.force_login(user)
    return client


def spoken(response) -> str:
    return response["Content-Language"]


# --- the fallback order ------------------------------------------------------------------------------------


def test_the_persons_choice_comes_before_the_browsers_language(technician_a):
    tenancy.set_language(technician_a, actor=technician_a, language="es")
    response = signed_in(technician_a, HTTP_ACCEPT_LANGUAGE="en-GB,en;q=0.9").get(MY_WORK)
    assert response.status_code == 200 and spoken(response) == "es"
    page = response.content.decode()
    assert '<html lang="es">' in page and "<h1>Mi trabajo</h1>" in page and "My work" not in page
    assert "Accept-Language" in response["Vary"]


def test_without_a_choice_the_browsers_language_is_used(technician_a):
    response = signed_in(technician_a, HTTP_ACCEPT_LANGUAGE="es-MX,es;q=0.9,en;q=0.5").get(MY_WORK)
    assert spoken(response) == "es" and "Mi trabajo" in response.content.decode()
    response = signed_in(technician_a, HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9").get(MY_WORK)
    assert spoken(response) == "en-gb" and "<h1>My work</h1>" in response.content.decode()


def test_a_browser_asking_for_no_language_the_platform_speaks_gets_the_organisations(org_a, technician_a, manager_a):
    tenancy.update_organization(org_a, actor=manager_a, language="es")
    response = signed_in(technician_a, HTTP_ACCEPT_LANGUAGE="de-DE,de;q=0.9,pl;q=0.5").get(MY_WORK)
    assert spoken(response) == "es"
    response = signed_in(technician_a).get(MY_WORK)  # no header at all
    assert spoken(response) == "es"
    tenancy.update_organization(org_a, actor=manager_a, language="en-gb")
    assert spoken(signed_in(technician_a, HTTP_ACCEPT_LANGUAGE="de").get(MY_WORK)) == "en-gb"


def test_outside_a_request_the_choice_then_the_organisations_default(org_a, technician_a, manager_a):
    assert language_for(technician_a, org_a) == "en-gb"
    tenancy.update_organization(org_a, actor=manager_a, language="es")
    org_a.refresh_from_db()
    assert language_for(technician_a, org_a) == "es"
    tenancy.set_language(technician_a, actor=technician_a, language="en-gb")
    assert language_for(technician_a, org_a) == "en-gb"


def test_the_login_page_speaks_the_browsers_language():
    response = Client(HTTP_ACCEPT_LANGUAGE="es").get(reverse("technician:login"))
    assert "<h1>Iniciar sesión</h1>" in response.content.decode()


# --- setting it: the technician view, the admin, the service ----------------------------------------------


def test_a_technician_chooses_spanish_on_the_phone_and_reads_the_confirmation_in_it(technician_a):
    client = signed_in(technician_a, HTTP_ACCEPT_LANGUAGE="en")
    assert 'name="language"' in client.get(MY_WORK).content.decode()
    response = client.post(reverse("technician:language"), {"language": "es"}, follow=True)
    page = response.content.decode()
    assert "Idioma guardado." in page and "<h1>Mi trabajo</h1>" in page
    profile = Profile.objects.get(user=technician_a)
    assert profile.language == "es"
    assert profile.history.latest().history_user == technician_a  # audited: who changed it
    client.post(reverse("technician:language"), {"language": ""})  # back to the browser's
    assert spoken(client.get(MY_WORK)) == "en-gb"


def test_the_service_refuses_an_unknown_language_and_a_stranger(technician_a, technician2_a, manager_a, manager_b):
    with pytest.raises(InvalidInput) as refused:
        tenancy.set_language(technician_a, actor=technician_a, language="de")
    assert refused.value.fields == {"language": ["Choose one of en-gb, es."]}
    with pytest.raises(PermissionDeniedError):
        tenancy.set_language(technician_a, actor=technician2_a, language="es")  # a colleague may not
    with pytest.raises(PermissionDeniedError):
        tenancy.set_language(technician_a, actor=manager_b, language="es")  # nor another organisation's manager
    tenancy.set_language(technician_a, actor=manager_a, language="es")  # their manager may
    assert Profile.objects.get(user=technician_a).history.latest().history_user == manager_a


def test_the_admin_sets_a_members_language(technician_a, manager_a):
    client = signed_in(manager_a)
    add = client.get(reverse("admin:tenancy_profile_add"))
    assert add.status_code == 200
    response = client.post(reverse("admin:tenancy_profile_add"), {"user": technician_a.pk, "language": "es"})
    assert response.status_code == 302, response.content.decode()[:2000]
    profile = Profile.objects.get(user=technician_a)
    assert profile.language == "es" and profile.history.latest().history_user == manager_a


# --- the API's errors in the person's language --------------------------------------------------------------


def test_the_api_error_envelope_is_in_the_spanish_users_language(api, org_a, planner_a, technician_a, technician2_a):
    order = services.create_work_order(org_a, title="Replace the seal", actor=planner_a, assignee=technician2_a)
    tenancy.set_language(technician_a, actor=technician_a, language="es")
    response = api(technician_a).post(f"/api/v1/work-orders/{order.pk}/start/", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "not_your_work"
    assert error["message"] == f"{order.number} no está asignada a ti."
    assert response["Content-Language"] == "es"

    conflict = api(technician_a).post(f"/api/v1/work-orders/{order.pk}/hold/", {"reason": "x"}, format="json")
    assert conflict.status_code == 409
    assert conflict.json()["error"]["message"].startswith(f"No se puede poner en espera {order.number}: está asignada.")

    english = api(technician2_a).post(f"/api/v1/work-orders/{order.pk}/complete/")
    assert english.status_code == 409
    assert english.json()["error"]["message"].startswith(f"Cannot complete {order.number}: it is assigned.")


# --- dates, numbers and money in the person's locale (the one date rule, per language) -----------------------


def test_dates_numbers_and_money_follow_the_active_language():
    moment = datetime.datetime(2026, 12, 5, 18, 4, tzinfo=datetime.UTC)
    madrid = zoneinfo.ZoneInfo("Europe/Madrid")
    assert formats.date_time(moment, madrid) == "Sat 5 Dec 2026, 19:04"
    assert money(Decimal("1234.5"), "EUR") == "€1,234.50"
    with translation.override("es"):
        assert formats.date_time(moment, madrid) == "sáb 5 Dic 2026, 19:04"
        assert money(Decimal("1234.5"), "EUR") == "1.234,50\xa0€"
        from django.utils.formats import localize

        assert localize(Decimal("2.5")) == "2,5"
