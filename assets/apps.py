from django.apps import AppConfig


class AssetsConfig(AppConfig):
    """Assets (devices), locations, meters, diagnostics and telemetry."""

    name = "assets"
    verbose_name = "Assets"
