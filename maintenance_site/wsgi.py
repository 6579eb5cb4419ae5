import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "maintenance_site.settings")
application = get_wsgi_application()

from maintenance_site.ops import telemetry  # noqa: E402

telemetry.setup()  # only when OTEL_EXPORTER_OTLP_ENDPOINT is set
