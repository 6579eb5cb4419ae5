"""Prometheus metrics: filled in by the metrics work. The websocket consumer calls these two hooks."""


def websocket_opened() -> None:
    pass


def websocket_closed() -> None:
    pass
