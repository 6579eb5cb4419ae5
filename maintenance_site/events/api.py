"""`/api/v1/events/`: filled in by the websocket/catch-up work."""
