"""Per-customer predictions stored in ``customer_score``: lifetime value, P(alive), churn."""
