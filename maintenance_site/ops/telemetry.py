"""OpenTelemetry traces, on only when OTEL_EXPORTER_OTLP_ENDPOINT is set (nothing imported, nothing slowed
otherwise).

`setup()` installs a tracer provider exporting over OTLP/HTTP (the collector's port 4318; no grpcio) in a
background batch, and the OpenTelemetry project's instrumentations: Django (HTTP requests), Celery (tasks),
psycopg (database calls), urllib (outgoing HTTP: chat channels, SMS, push) and aiohttp's client (webhooks). Every
span carries the request's correlation id (`correlation_id`) so a trace and the log lines of one request meet. A
collector that is down costs a warning in the log from the exporter's thread, never an error in a request or a task.

Called from the WSGI and ASGI entry points and, in each Celery worker process, from `worker_process_init`.
The standard variables apply: OTEL_SERVICE_NAME (default "maintenance-platform"), OTEL_EXPORTER_OTLP_HEADERS,
OTEL_TRACES_SAMPLER, OTEL_RESOURCE_ATTRIBUTES …
"""

import logging
import os

from maintenance_site.ops.correlation import get_correlation_id

logger = logging.getLogger(__name__)
DEFAULT_SERVICE_NAME = "maintenance-platform"
_state: dict = {}


def enabled() -> bool:
    return bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip())


def _correlation_processor():
    from opentelemetry.sdk.trace import SpanProcessor  # optional: loaded only when tracing is on

    class CorrelationIdProcessor(SpanProcessor):
        """Puts the current correlation id on every span as it starts (requests, tasks, queries, HTTP calls)."""

        def on_start(self, span, parent_context=None):
            correlation_id = get_correlation_id()
            if correlation_id and correlation_id != "-":
                span.set_attribute("correlation_id", correlation_id)

    return CorrelationIdProcessor()


def _response_hook(span, request, response):
    # The correlation middleware runs after OpenTelemetry's own: by the response the request has its id.
    correlation_id = getattr(request, "correlation_id", None)
    if correlation_id and span is not None and span.is_recording():
        span.set_attribute("correlation_id", correlation_id)


def setup(*, exporter=None, force: bool = False):
    """Install tracing once per process, before the first database connection (psycopg's `connect` is what is
    traced); returns the tracer provider, or None when it is off. `exporter` (tests:
    an InMemorySpanExporter) replaces the OTLP exporter and is flushed span by span; the provider is then not
    made the global one."""
    if "provider" in _state:
        return _state["provider"]
    if not (enabled() or force):
        return None
    from opentelemetry import trace  # optional: loaded only when tracing is on
    from opentelemetry.instrumentation.aiohttp_client import (  # optional: loaded only when tracing is on
        AioHttpClientInstrumentor,
    )
    from opentelemetry.instrumentation.celery import CeleryInstrumentor  # optional: loaded only when tracing is on
    from opentelemetry.instrumentation.django import DjangoInstrumentor  # optional: loaded only when tracing is on
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor  # optional: loaded only when tracing is on
    from opentelemetry.instrumentation.urllib import URLLibInstrumentor  # optional: loaded only when tracing is on
    from opentelemetry.sdk.resources import Resource  # optional: loaded only when tracing is on
    from opentelemetry.sdk.trace import TracerProvider  # optional: loaded only when tracing is on
    from opentelemetry.sdk.trace.export import (  # optional: loaded only when tracing is on
        BatchSpanProcessor,
        SimpleSpanProcessor,
    )

    service_name = (
        os.environ.get("OTEL_SERVICE_NAME", "").strip()
        or os.environ.get("SERVICE_NAME", "").strip()  # seed 001's name
        or DEFAULT_SERVICE_NAME
    )
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(_correlation_processor())
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http import trace_exporter  # optional: loaded only when tracing is on

        OTLPSpanExporter = trace_exporter.OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))  # endpoint from the environment
        trace.set_tracer_provider(provider)
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    DjangoInstrumentor().instrument(tracer_provider=provider, response_hook=_response_hook)
    CeleryInstrumentor().instrument(tracer_provider=provider)
    PsycopgInstrumentor().instrument(tracer_provider=provider, skip_dep_check=True)
    URLLibInstrumentor().instrument(tracer_provider=provider)
    AioHttpClientInstrumentor().instrument(tracer_provider=provider)
    _state["provider"] = provider
    logger.info("OpenTelemetry tracing on: service %s", service_name)
    return provider


def teardown() -> None:
    """Undo `setup()` (tests)."""
    provider = _state.pop("provider", None)
    if provider is None:
        return
    from opentelemetry.instrumentation.aiohttp_client import (  # optional: loaded only when tracing is on
        AioHttpClientInstrumentor,
    )
    from opentelemetry.instrumentation.celery import CeleryInstrumentor  # optional: loaded only when tracing is on
    from opentelemetry.instrumentation.django import DjangoInstrumentor  # optional: loaded only when tracing is on
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor  # optional: loaded only when tracing is on
    from opentelemetry.instrumentation.urllib import URLLibInstrumentor  # optional: loaded only when tracing is on

    instrumentors = (
        DjangoInstrumentor(),
        CeleryInstrumentor(),
        PsycopgInstrumentor(),
        URLLibInstrumentor(),
        AioHttpClientInstrumentor(),
    )
    for instrumentor in instrumentors:
        instrumentor.uninstrument()
    provider.shutdown()
