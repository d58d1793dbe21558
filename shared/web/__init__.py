"""HTTP plumbing every Segmenta API shares: errors, key auth and scopes, health, metrics.

Needs the FastAPI stack, which each API service's extra installs; workers never import it.
"""
