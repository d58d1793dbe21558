"""Segmenta's shared library: settings, schema, sessions, Celery wiring, contracts, auth.

Every service depends on it; it depends on no service and has no entry points.
"""
