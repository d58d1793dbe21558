"""Churn and purchase-propensity models: supervised, trained on the tenant's own history.

A run (`runs`) learns from labels it can observe: features as of ``as_of - horizon``
(`data`), and whether each customer bought in the horizon after that; it then scores
every customer as of ``as_of`` with gradient-boosted trees (`model`), calibrated when
that helps on validation, measured against recency alone and BG/NBD expected purchases
(`metrics`), each score with the features that pushed it most (`reasons`).
"""
