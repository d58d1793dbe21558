"""``customer_score.anomaly``: how unusual a customer is among all the tenant's customers,
0 (typical) .. 1 (the most unusual).

Written by the anomaly run (`services.segment.anomalies.pipeline`), its one writer: the
rank of the customer's IsolationForest score on their feature vector. Ranks rather than
raw scores keep it comparable between runs.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import text
from sqlmodel import Session

from services.segment.bulk import copy_temp_table

_STORE = text(
    """
    INSERT INTO customer_score AS s (customer_pk, tenant_id, anomaly, updated_at)
    SELECT u.pk, :tenant, u.anomaly, now()
    FROM anomaly_scores u
    ON CONFLICT (customer_pk) DO UPDATE SET anomaly = EXCLUDED.anomaly, updated_at = now()
    """
)


def store_anomalies(
    session: Session, *, tenant_id: int, pks: NDArray[np.int64], scores: NDArray[np.float64]
) -> None:
    copy_temp_table(session, "anomaly_scores", {"pk": pks, "anomaly": np.round(scores, 4)})
    session.execute(_STORE, {"tenant": tenant_id})
