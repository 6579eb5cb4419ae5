"""The API's own refusals (authentication, pagination, the analytics parameters, the capacity range) and the back
office's action pages and messages reach a Spanish reader in Spanish, while an English reader keeps the English
sentence (issue 30)."""

from rest_framework.test import APIClient

from inventory.models import Part, StockLocation
from maintenance_site.tenancy import services as tenancy
from tests.admin_forms import page_text

PARTS = "/admin/inventory/part/"


def spanish(user):
    tenancy.set_language(user, actor=user, language="es")
    return user


def test_a_malformed_api_key_header_is_refused_in_the_browsers_language():
    english = APIClient().get("/api/v1/work-orders/", HTTP_AUTHORIZATION="Api-Key", HTTP_ACCEPT_LANGUAGE="en")
    assert english.status_code == 401
    assert english.json()["error"]["message"] == "Malformed API key header: use “Authorization: Api-Key <key>”."

    response = APIClient().get("/api/v1/work-orders/", HTTP_AUTHORIZATION="Api-Key", HTTP_ACCEPT_LANGUAGE="es")
    assert response.status_code == 401
    assert (
        response.json()["error"]["message"]
        == "Cabecera de clave de API mal formada: usa «Authorization: Api-Key <clave>»."
    )


def test_pagination_and_analytics_refusals_follow_the_users_language(api, planner_a):
    english = api(planner_a).get("/api/v1/work-orders/", {"page": "abc"})
    assert english.status_code == 400
    assert english.json()["error"]["fields"]["page"] == ["“abc” is not a whole number; give 1 or more."]

    spanish(planner_a)
    client = api(planner_a)
    page = client.get("/api/v1/work-orders/", {"page": "abc"})
    assert page.status_code == 400 and page["Content-Language"] == "es"
    assert page.json()["error"]["fields"]["page"] == ["«abc» no es un número entero; indica 1 o más."]

    period = client.get("/api/v1/analytics/overview/", {"from": "2026-03-10", "to": "2026-03-01"})
    assert period.status_code == 400
    error = period.json()["error"]
    assert error["message"] == (
        "«from» (2026-03-10) es posterior a «to» (2026-03-01): indica from ≤ to, ambas fechas locales (AAAA-MM-DD)."
    )
    assert error["fields"]["from"] == ["Posterior a «to»."]

    day = client.get("/api/v1/analytics/overview/", {"from": "yesterday"})
    assert day.status_code == 400
    assert day.json()["error"]["message"] == "«yesterday» no es una fecha: indica from como fecha local, AAAA-MM-DD."


def test_the_capacity_range_is_refused_in_spanish(api, planner_a):
    spanish(planner_a)
    response = api(planner_a).get("/api/v1/capacity/", {"from": "2026-03-10", "to": "2026-03-01"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["message"] == "`to` es anterior a `from`."
    assert error["fields"]["to"] == ["Igual o posterior a `from`."]


def test_a_stock_action_page_and_its_message_are_in_spanish(client, org_a, storekeeper_a):
    warehouse = StockLocation.objects.create(organization=org_a, name="Warehouse", kind="warehouse")
    part = Part.objects.create(organization=org_a, sku="BRG-6205", name="Ball bearing 6205", unit="each")
    client.force_login(spanish(storekeeper_a))
    base = {"action": "receive_stock", "_selected_action": [str(part.pk)]}
    fields = {"location": warehouse.pk, "reason": "Albarán 4711", f"quantity-{part.pk}": "6"}

    form = page_text(client.post(PARTS, {**base, "index": "0"}))
    assert "Recibir stock" in form and "Coste unitario" in form and "Dónde se coloca el stock." in form
    assert "Leave a row empty" not in form and "Deja una fila vacía para dejarla fuera." in form

    review = page_text(client.post(PARTS, {**base, **fields, "step": "review"}))
    assert "Confirma: ¿recibir como sigue?" in review and "Sí, recibir" in review
    assert "Recibir 6 " in review and " de BRG-6205 Ball bearing 6205 en Warehouse (coste unitario " in review

    done = client.post(PARTS, {**base, **fields, "step": "confirm"})
    assert done.status_code == 302
    assert "Se recibieron 1 pieza(s) en Warehouse." in page_text(client.get(PARTS))
