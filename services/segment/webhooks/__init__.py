"""Webhooks: an admin subscribes a URL to membership changes of chosen segments; the
segment worker batches the changes into signed deliveries, retries them with backoff
and jitter, and dead-letters them after the attempt limit."""
