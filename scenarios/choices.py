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
    # Seed 002's categories: tasks that keep a workspace (a code base of the organisation) healthy.
    CODE_QUALITY = "code_quality", "Code quality"
    TEST_MAINTENANCE = "test_maintenance", "Test maintenance"
    CONFIG_CLEANUP = "config_cleanup", "Configuration cleanup"
    DOCUMENTATION = "documentation", "Documentation"
    SECURITY_SCANNING = "security_scanning", "Security scanning"
    PERFORMANCE_OPTIMIZATION = "performance_optimization", "Performance optimisation"
    DEPENDENCY_UPDATES = "dependency_updates", "Dependency updates"


class Weight(models.TextChoices):
    """Heavy scenarios load the database or the disk: SCENARIOS_MAX_HEAVY limits how many are active,
    and the runner never runs two heavy ones at the same time."""

    LIGHT = "light", "Light"
    HEAVY = "heavy", "Heavy"


# The built-in executor of each workspace category (scenarios.workspaces): `create-task --category code_quality`
# runs it unless --executor names another registered function.
DEFAULT_EXECUTORS = {
    Category.CODE_QUALITY: "workspace-code-quality",
    Category.TEST_MAINTENANCE: "workspace-tests",
    Category.CONFIG_CLEANUP: "workspace-config-cleanup",
    Category.DOCUMENTATION: "workspace-link-check",
    Category.SECURITY_SCANNING: "workspace-security-scan",
    Category.DEPENDENCY_UPDATES: "workspace-dependency-updates",
    Category.PERFORMANCE_OPTIMIZATION: "workspace-benchmark",
}
