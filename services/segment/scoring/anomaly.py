"""How unusual a customer is for their own segment: 0 (typical) .. 1 (the most unusual).

The distance to the segment's centre, in the model's scaled space, ranked against every
customer of the run. Ranks rather than raw distances keep the score comparable between
runs and segments of different spread; noise points (density methods) rank as most
unusual.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import text
from sqlmodel import Session

from services.segment.bulk import copy_temp_table
from services.segment.modeling.segmenter import Segmenter

_STORE = text(
    """
    INSERT INTO customer_score AS s (customer_pk, tenant_id, anomaly, updated_at)
    SELECT u.pk, :tenant, u.anomaly, now()
    FROM anomaly_scores u
    ON CONFLICT (customer_pk) DO UPDATE SET anomaly = EXCLUDED.anomaly, updated_at = now()
    """
)


def anomaly_scores(segmenter: Segmenter, values: NDArray[np.float64]) -> NDArray[np.float64]:
    labels = segmenter.predict(values)
    scaled = segmenter.scaler_.transform(values[:, segmenter.columns_])
    centres = segmenter.scaler_.transform(segmenter.centroids_)
    distance = np.full(len(values), np.inf)
    clustered = labels >= 0
    distance[clustered] = np.linalg.norm(scaled[clustered] - centres[labels[clustered]], axis=1)
    ranks = distance.argsort(kind="stable").argsort(kind="stable")
    return np.asarray(ranks / max(len(values) - 1, 1), dtype=np.float64)


def store_anomalies(
    session: Session, *, tenant_id: int, pks: NDArray[np.int64], scores: NDArray[np.float64]
) -> None:
    copy_temp_table(session, "anomaly_scores", {"pk": pks, "anomaly": np.round(scores, 4)})
    session.execute(_STORE, {"tenant": tenant_id})
