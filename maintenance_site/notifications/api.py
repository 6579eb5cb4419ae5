"""`/api/v1/notifications/`: filled in by the notifications work."""
