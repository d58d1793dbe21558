"""Names shared by the probe worker and the tests that drive it."""

PROBE_TASK = "ingest.probe"
SCHEMA = """
CREATE TABLE IF NOT EXISTS probe_effect (
    subject_id bigint PRIMARY KEY, hits int NOT NULL DEFAULT 1, pid int NOT NULL);
CREATE TABLE IF NOT EXISTS probe_poison (subject_id bigint PRIMARY KEY);
CREATE TABLE IF NOT EXISTS probe_killer (subject_id bigint PRIMARY KEY);
"""
