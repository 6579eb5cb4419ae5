"""Stored messages (issue 30). An anomaly's sentence is stored as the detector wrote it (English) and written again
in the reader's language when shown (`assets.telemetry.messages.localized`): every sentence each detector can write
is recognised — a detector's wording cannot change without the table — and reads in Spanish with Spanish numbers;
a sentence from elsewhere is shown as stored. Audit reasons stay as written (see the README's "Languages")."""

from django.utils import translation

from assets.telemetry.detection import Config, SeriesDetector
from assets.telemetry.messages import localized


def _messages(config: Config, values, *, step: float = 60.0, learn_first: int = 0) -> dict[str, str]:
    """Run the detectors over `values` (one a minute); the first sentence each detector wrote, by detector."""
    detector = SeriesDetector(config)
    found: dict[str, str] = {}
    points = [(1_700_000_000 + index * step, float(value)) for index, value in enumerate(values)]
    if learn_first:
        detector.run(points[:learn_first])
        points = points[learn_first:]
    for _kind, name, episode in detector.run(points, learn=not learn_first):
        found.setdefault(name, episode["message"])
    for name, episode in detector.episodes.items():
        found.setdefault(name, episode["message"])
    return found


def every_detectors_sentences() -> dict[str, list[str]]:
    steady = [50 + (1 if index % 2 else -1) for index in range(80)]
    sentences: dict[str, list[str]] = {}

    def add(found):
        for name, message in found.items():
            sentences.setdefault(name, []).append(message)

    add(_messages(Config(statistical=False, warning_high=10, critical_high=20), [5, 15, 5, 25]))
    add(_messages(Config(statistical=False, warning_low=0, critical_low=-10), [5, -1.5, 5, -12]))
    add(_messages(Config(statistical=False, sensor_max=100), [5, 150]))
    add(_messages(Config(statistical=False, max_rate_per_minute=1), [5, 5.5, 12.25]))
    add(_messages(Config(statistical=False, flatline_minutes=5), [7.5] * 12))
    add(_messages(Config(), [*steady, 400]))
    add(_messages(Config(), [*steady, *[53.5] * 40], learn_first=len(steady)))
    return sentences


def test_every_sentence_a_detector_writes_reads_in_spanish_with_spanish_numbers():
    sentences = every_detectors_sentences()
    assert set(sentences) == {"limit", "sensor", "rate", "flatline", "spike", "drift"}
    for name, messages in sentences.items():
        for message in messages:
            with translation.override("en-gb"):
                assert localized(message) == message, message  # English reads what was stored
            with translation.override("es"):
                spanish = localized(message)
            assert spanish != message, f"{name}: not recognised: {message!r}"
    with translation.override("es"):
        assert localized("15 is above the warning limit 10") == "15 está por encima del límite de aviso 10"
        assert localized("-12 is below the critical limit -10") == "-12 está por debajo del límite crítico -10"
        assert localized("changed by 6.75 per minute (limit 1)") == "cambió 6,75 por minuto (límite 1)"
        assert localized("7.5 unchanged for 6 minutes: is the sensor stuck?") == (
            "7,5 sin cambios durante 6 minutos: ¿se ha atascado el sensor?"
        )


def test_a_sentence_from_elsewhere_is_shown_as_stored():
    with translation.override("es"):
        assert localized("Pump room sensor replaced on Monday") == "Pump room sensor replaced on Monday"
        assert localized("") == ""


def test_a_meter_refusing_a_telemetry_reading_is_a_400_in_the_readers_language(org_a):
    """The refusal names the batch's point (the translated sentence used to meet a local `_` there: a 500)."""
    from datetime import timedelta

    import pytest
    from django.utils import timezone

    from assets import meters
    from assets import services as asset_services
    from assets.models import Meter
    from assets.telemetry import services
    from maintenance_site.errors import InvalidInput
    from maintenance_site.tenancy import SYSTEM

    pump = asset_services.create_asset(org_a, code="PMP-9", name="Pump")
    meters.create_meter(org_a, asset=pump, name="Run hours", kind=Meter.Kind.CUMULATIVE, actor=SYSTEM)
    services.create_definition(
        org_a, actor=SYSTEM, metric="run_hours", asset=pump, feeds_meter="Run hours", statistical=False
    )
    now = timezone.now()

    def batch(value, minutes_ago):
        moment = (now - timedelta(minutes=minutes_ago)).isoformat()
        return [{"asset_id": pump.pk, "metric": "run_hours", "ts": moment, "value": value}]

    services.ingest_points(org_a, batch(100, 10), actor=SYSTEM)
    with translation.override("es"), pytest.raises(InvalidInput) as refused:
        services.ingest_points(org_a, batch(50, 5), actor=SYSTEM)
    assert refused.value.message.startswith("Un contador rechazó una lectura de este lote: ")
    assert "points[0].value" in refused.value.fields
