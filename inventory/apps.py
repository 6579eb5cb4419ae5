from django.apps import AppConfig


class InventoryConfig(AppConfig):
    """Spare parts, stock locations, the stock ledger, reservations, vendors and purchasing."""

    name = "inventory"
    verbose_name = "Inventory"
