"""The other services speak the person's language too (issue 30): an inventory refusal and an SLA refusal reach a
Spanish user in Spanish over the API (an English user still reads the English text), a maintenance-window notice
is written in each recipient's language, and the admin shows our models' labels in Spanish to a Spanish staff
user."""

from datetime import timedelta

from django.utils import timezone

from inventory import services as inventory
from inventory.models import Part, StockLocation
from maintenance_site.notifications.models import Notification
from maintenance_site.tenancy import SYSTEM
from maintenance_site.tenancy import services as tenancy
from scheduling.windows.services import create_window
from workorders import services as work_orders

SLA_CALENDARS = "/api/v1/sla/calendars/"


def spanish(user):
    tenancy.set_language(user, actor=user, language="es")
    return user


def test_an_inventory_refusal_is_in_the_spanish_users_language(api, org_a, planner_a, technician_a, storekeeper_a):
    van = StockLocation.objects.create(organization=org_a, name="Van 3", kind="van", holder=technician_a)
    warehouse = StockLocation.objects.create(organization=org_a, name="Warehouse", kind="warehouse")
    bearing = Part.objects.create(organization=org_a, sku="BRG-6205", name="Ball bearing 6205", unit="each")
    inventory.receive_stock(bearing, warehouse, 12, "4.00", actor=storekeeper_a)
    inventory.receive_stock(bearing, van, 2, "4.00", actor=storekeeper_a)
    order = work_orders.create_work_order(org_a, title="Replace bearing", actor=planner_a, assignee=technician_a)
    job = work_orders.start(order, actor=technician_a)
    body = {"work_order": job.pk, "location": van.pk, "quantity": 3}

    english = api(technician_a).post(f"/api/v1/inventory/parts/{bearing.pk}/usage/", body)
    assert english.status_code == 409
    assert english.json()["error"]["message"].startswith("Only 2 left in Van 3 (BRG-6205 Ball bearing 6205")

    spanish(technician_a)
    response = api(technician_a).post(f"/api/v1/inventory/parts/{bearing.pk}/usage/", body)
    assert response.status_code == 409 and response["Content-Language"] == "es"
    error = response.json()["error"]
    assert error["code"] == "insufficient_stock"
    assert error["message"].startswith("Solo quedan 2 en Van 3 (BRG-6205 Ball bearing 6205; has pedido 3 ")
    assert "También disponible en: Warehouse (12)." in error["message"]

    refused = api(technician_a).post(f"/api/v1/inventory/parts/{bearing.pk}/usage/", {**body, "quantity": 0})
    assert refused.status_code == 400
    assert refused.json()["error"]["message"] == "La cantidad debe ser mayor que cero."


def test_an_sla_refusal_is_in_the_spanish_users_language(api, manager_a):
    english = api(manager_a).post(SLA_CALENDARS, {"name": "Nothing", "hours": []}, format="json")
    assert english.status_code == 400
    assert english.json()["error"]["message"] == "A calendar needs working time: add working hours, or make it 24/7."

    spanish(manager_a)
    response = api(manager_a).post(SLA_CALENDARS, {"name": "Nothing", "hours": []}, format="json")
    assert response.status_code == 400 and response["Content-Language"] == "es"
    error = response.json()["error"]
    assert error["message"] == "Un calendario necesita tiempo laborable: añade un horario laboral o hazlo 24/7."
    assert error["fields"]["hours"] == ["Añade al menos un tramo de horario laboral (o haz el calendario 24/7)."]


def test_a_maintenance_window_notice_is_written_in_each_recipients_language(org_a, manager_a, technician_a):
    spanish(technician_a)
    now = timezone.now()
    create_window(
        org_a,
        title="Firmware update",
        starts_at=now + timedelta(hours=5),
        ends_at=now + timedelta(hours=6),
        notify_users=True,
        actor=SYSTEM,
    )
    to_technician = Notification.objects.filter(recipient=technician_a).latest("pk")
    to_manager = Notification.objects.filter(recipient=manager_a).latest("pk")
    assert to_technician.title == "Mantenimiento programado: Firmware update"
    assert "de todo el sistema del" in to_technician.body
    assert to_manager.title == "Maintenance scheduled: Firmware update"
    assert "of the whole system from" in to_manager.body


def test_the_admin_shows_our_labels_in_spanish_to_a_spanish_staff_user(client, org_a, manager_a, technician_a):
    StockLocation.objects.create(organization=org_a, name="Van 3", kind="van", holder=technician_a)
    client.force_login(spanish(manager_a))
    page = client.get("/admin/inventory/stocklocation/").content.decode()
    assert "Furgoneta" in page
    policies = client.get("/admin/sla/slapolicy/")
    assert policies.status_code == 200
    assert "políticas de SLA" in policies.content.decode().lower().replace("sla", "SLA")
