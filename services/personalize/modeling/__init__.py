"""Personalisation decisions and statistics (import the modules: the API loads only the
light ones, never scikit-learn or SciPy): numpy in, typed results and JSON out; no
database, no Redis, no HTTP (the API and worker load state, call these, persist results).

Typical use, from the API (hot path) and the worker (learning, reports)::

    policy = SegmentThompson(epsilon=0.02).fit()                 # or .from_dict(artifact)
    shown = policy.choose("seg-3", eligible, n=1, rng=rng)       # ~tens of microseconds
    table = cache.get((policy.version_, "seg-3", tuple(eligible), 1),
                      lambda: policy.propensities("seg-3", eligible, 1, rng))
    logged = table.for_ranking(shown)                            # never 0
    policy.update([FeedbackCount("seg-3", "free-ship", 12, 388)])  # a worker batch
    policy.remap_segments({"seg-3": "seg-7", "seg-4": None})     # after a retrain

* `bandit`: Thompson sampling per segment (Beta-Bernoulli per (segment, offer)).
* `contextual`: linear Thompson sampling over customer features, and why not a library.
* `strategies`: the random and static strategies, with exact propensities.
* `propensity`: Monte Carlo propensity tables, the epsilon floor, the cache.
* `assignment`: sticky hash-based holdout and experiment arms.
* `ope`: IPS, self-normalised IPS and doubly robust estimates with bootstrap intervals.
* `experiments`: differences, the always-valid mSPRT, sample-ratio mismatch, CUPED.
"""
