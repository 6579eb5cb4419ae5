from django.db import models


class Heartbeat(models.Model):
    """The last sign of life of a background component (beat, worker): what /health/ready and the status
    endpoint read to tell whether scheduled jobs run."""

    component = models.CharField(max_length=40, unique=True)
    last_seen_at = models.DateTimeField()
    beats = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["component"]

    def __str__(self) -> str:
        return f"{self.component} at {self.last_seen_at:%Y-%m-%d %H:%M:%S}"
