"""The ASGI side of the receiver: the app factory (``app``), the webhook endpoint, the JSON API over predictions
and runs, health checks, metrics, access control, and the one module of query parameters."""
