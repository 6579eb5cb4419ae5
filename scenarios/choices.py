"""The scenarios' vocabulary, shared by the models and the registry of scenario functions (which the models
consult, so it cannot import them): key format, categories and weights."""

from django.db import models

KEY_PATTERN = r"^[a-z0-9][a-z0-9-]{0,79}$"


class Category(models.TextChoices):
    MONITORING = "monitoring", "Monitoring"
    HOUSEKEEPING = "housekeeping", "Housekeeping"
    DATA = "data", "Data"
    SECURITY = "security", "Security"
    PERFORMANCE = "performance", "Performance"
    OTHER = "other", "Other"


class Weight(models.TextChoices):
    """Heavy scenarios load the database or the disk: SCENARIOS_MAX_HEAVY limits how many are active,
    and the runner never runs two heavy ones at the same time."""

    LIGHT = "light", "Light"
    HEAVY = "heavy", "Heavy"
