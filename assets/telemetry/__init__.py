"""IoT telemetry: metric definitions, series, raw points (partitioned by month on PostgreSQL), hourly and daily
rollups, anomaly episodes and the ingest log. `services` writes, `queries` reads (for the API and for the asset
health work that builds on it), `detection` holds the detectors, `storage` the partitions, rollups and retention."""
