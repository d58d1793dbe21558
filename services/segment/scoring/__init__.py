"""Per-customer scores stored in ``customer_score``: lifetime value and P(alive) (churn is
the supervised model's, written by ``services.segment.predictions``)."""
