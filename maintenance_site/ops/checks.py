"""System checks of the deployment (`manage.py check --deploy`)."""

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security, deploy=True)
def secret_key_is_set(app_configs, **kwargs):
    if not settings.SECRET_KEY_GENERATED:
        return []
    return [
        Warning(
            f"SECRET_KEY is not set: the key generated in {settings.SECRET_KEY_FILE} is known to this machine only.",
            hint="Set SECRET_KEY (a long random string) when more than one machine serves the platform, "
            "so that sessions and API tokens signed by one are accepted by the others.",
            id="ops.W001",
        )
    ]
