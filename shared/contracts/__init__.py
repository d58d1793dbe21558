"""Named task contracts between services: ``<service>.<verb>_<noun>`` plus a payload model.

Producers never call another service's code: they enqueue a task by name through the outbox.
Every message carries outbox ids only; the consumer re-reads what they point to.
"""

from __future__ import annotations

from typing import Final

from pydantic import BaseModel, ConfigDict, Field

NLP_ANALYZE_REVIEWS: Final = "nlp.analyze_reviews"
NLP_ANALYZE_TRANSCRIPTS: Final = "nlp.analyze_transcripts"
SEGMENT_REFRESH_CUSTOMERS: Final = "segment.refresh_customers"
# Subject: a segmentation_run id. Relayed like any outbox work, so a requested run is
# never lost with a worker; the run itself is single-runner per tenant (advisory lock).
SEGMENT_TRAIN_SEGMENTATION: Final = "segment.train_segmentation"
# Sent by Celery beat (no subject): create the runs that the retrain schedule makes due.
SEGMENT_SCHEDULE_RETRAINS: Final = "segment.schedule_retrains"
# Sent by Celery beat (no subject): turn new membership changes into webhook deliveries
# and send the ones that are due (the rows are the ledger; a lost tick only delays).
SEGMENT_DELIVER_WEBHOOKS: Final = "segment.deliver_webhooks"
# Subject: a succeeded segmentation_run to make the tenant's active one (re-assigns all).
SEGMENT_ACTIVATE_SEGMENTATION: Final = "segment.activate_segmentation"
# Subject: a prediction_run id (a churn or purchase-propensity model); a long job.
SEGMENT_TRAIN_PREDICTION: Final = "segment.train_prediction"
# Sent by Celery beat (no subject): create the prediction runs that their schedule makes due.
SEGMENT_SCHEDULE_PREDICTIONS: Final = "segment.schedule_predictions"
# Subject: an anomaly_run id: flag customers whose recent behaviour departs from their
# own history or from the population, and segments that left their forecast.
SEGMENT_DETECT_ANOMALIES: Final = "segment.detect_anomalies"
# Sent by Celery beat (no subject): create the anomaly runs that the schedule makes due.
SEGMENT_SCHEDULE_ANOMALIES: Final = "segment.schedule_anomalies"
# Subject: a customer whose segment changed; personalize refreshes their offers.
PERSONALIZE_REFRESH_CUSTOMERS: Final = "personalize.refresh_customers"
# Subject: a segmentation_run just made active; anyone's segment may have changed, so
# personalize refreshes the whole tenant (one message instead of one per customer).
PERSONALIZE_REFRESH_SEGMENTATION: Final = "personalize.refresh_segmentation"

# Subject: a placement row whose offers, settings or experiment changed; personalize
# rebuilds its cached snapshot (the hot path's only view of it).
PERSONALIZE_REFRESH_PLACEMENTS: Final = "personalize.refresh_placements"
# Subject: a placement row with new feedback; personalize folds it into the policy.
PERSONALIZE_APPLY_FEEDBACK: Final = "personalize.apply_feedback"
# Sent by Celery beat (no subject): orders that used an offer's code, or followed a click
# on one, become conversions of that decision.
PERSONALIZE_ATTRIBUTE_ORDERS: Final = "personalize.attribute_orders"
# Sent by Celery beat (no subject): move logged decisions from the Redis stream to Postgres.
PERSONALIZE_DRAIN_DECISIONS: Final = "personalize.drain_decisions"
# Subject: a recommender_run id; the personalize runs worker trains it (a long job).
PERSONALIZE_TRAIN_RECOMMENDER: Final = "personalize.train_recommender"
# Sent by Celery beat (no subject): create the recommender runs the schedule makes due.
PERSONALIZE_SCHEDULE_RECOMMENDERS: Final = "personalize.schedule_recommenders"

SERVICES: Final = ("ingest", "nlp", "segment", "personalize")
# Long jobs (`shared.reliable.long_job`: a training, an activation that re-assigns a whole
# tenant) run for minutes to hours. Each service's long jobs have a queue of their own,
# ``<service>.runs``, consumed by a worker of their own, so that its real-time work (a
# customer's refresh seconds after an order) never waits behind one. A new long job is
# added here, and `long_job` refuses to register one that is not.
LONG_JOBS: Final = frozenset(
    {
        SEGMENT_TRAIN_SEGMENTATION,
        SEGMENT_ACTIVATE_SEGMENTATION,
        SEGMENT_TRAIN_PREDICTION,
        SEGMENT_DETECT_ANOMALIES,
        PERSONALIZE_TRAIN_RECOMMENDER,
    }
)
RUNS_SUFFIX: Final = ".runs"


def service_of(task_name: str) -> str:
    service = task_name.split(".", 1)[0]
    if service not in SERVICES:
        raise ValueError(f"task {task_name!r} names no known service")
    return service


def runs_queue(service: str) -> str:
    """The queue of ``service``'s long jobs."""
    return f"{service}{RUNS_SUFFIX}"


# Every queue a task can be routed to: each service's real-time queue, named after it,
# and the runs queue of each service that has long jobs.
QUEUES: Final = (*SERVICES, *sorted({runs_queue(service_of(job)) for job in LONG_JOBS}))


def queue_for(task_name: str) -> str:
    """The one routing rule: a long job to its service's runs queue, anything else to
    the service's own queue. The relay, Celery's router and the producers all ask here."""
    service = service_of(task_name)
    return runs_queue(service) if task_name in LONG_JOBS else service


class OutboxBatch(BaseModel):
    """The payload of every relayed task: which outbox rows to work on."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    outbox_ids: list[int] = Field(min_length=1)
