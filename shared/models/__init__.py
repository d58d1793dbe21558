"""The one Postgres schema. Tables only: request/response models live in the services."""

from shared.models.anomalies import AnomalyFlag, AnomalyRun, SegmentAlert
from shared.models.base import metadata
from shared.models.commerce import Event, Order, OrderLine, Product
from shared.models.customers import Customer, CustomerContact, IdentityLink
from shared.models.messaging import DeadLetter, ErasureRequest, Outbox
from shared.models.personalize import (
    AttributionCursor,
    Decision,
    Experiment,
    Feedback,
    Offer,
    Placement,
    PolicyRun,
)
from shared.models.predictions import PredictionRun, PredictionScore
from shared.models.recommend import RecommenderRun
from shared.models.segments import (
    CustomerFeatures,
    CustomerScore,
    MembershipHistory,
    Segment,
    SegmentationRun,
    SegmentMembership,
)
from shared.models.tenancy import ApiKey, AuditLog, Suppression, Tenant
from shared.models.texts import Review, TextAnalysis, Transcript, TranscriptTurn
from shared.models.webhooks import WebhookDelivery, WebhookDeliveryItem, WebhookSubscription

__all__ = [
    "AnomalyFlag",
    "AnomalyRun",
    "ApiKey",
    "AttributionCursor",
    "AuditLog",
    "Customer",
    "CustomerContact",
    "CustomerFeatures",
    "CustomerScore",
    "DeadLetter",
    "Decision",
    "ErasureRequest",
    "Event",
    "Experiment",
    "Feedback",
    "IdentityLink",
    "MembershipHistory",
    "Offer",
    "Order",
    "OrderLine",
    "Outbox",
    "Placement",
    "PolicyRun",
    "PredictionRun",
    "PredictionScore",
    "Product",
    "RecommenderRun",
    "Review",
    "Segment",
    "SegmentAlert",
    "SegmentMembership",
    "SegmentationRun",
    "Suppression",
    "Tenant",
    "TextAnalysis",
    "Transcript",
    "TranscriptTurn",
    "WebhookDelivery",
    "WebhookDeliveryItem",
    "WebhookSubscription",
    "metadata",
]
