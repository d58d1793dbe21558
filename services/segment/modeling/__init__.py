"""Customer segmentation models: pure numpy in, JSON out; no database, no pickles.

Typical use, from a task that has loaded one feature row per customer::

    segmenter = Segmenter(algorithm="kmeans", k="auto", seed=7).fit(X, feature_names=names)
    keys = segmenter.assign_keys(customer_ids, previous_members=..., previous_centroids=...)
    report = segmenter.explain(X, revenue=revenue, clv=clv)   # names, profiles, rules
    map_2d = segmenter.project(X)                              # dashboard scatter
    artifact = segmenter.to_artifact()                         # JSON-able dict
    Segmenter.from_artifact(artifact).predict(X_new)           # same labels, no refit

Pipeline: `FeatureScaler` (log1p of skewed non-negative features, then z-scores), an
optional PCA (``pca_components``), then the clustering ``algorithm``:

* ``kmeans``, ``minibatch_kmeans`` (for large populations) and ``gmm`` (full-covariance
  Gaussian mixture) fit on every row.
* ``agglomerative`` (Ward), ``dbscan`` and ``hdbscan`` are quadratic in time or memory
  (Ward on 20k rows takes ~22 s and ~1.6 GB), so they fit on a seeded sample of
  ``sample_size`` rows (default 10,000), and every row, sampled or not, is then assigned
  by the fitted model's rule: Ward by nearest cluster centroid; the density methods by
  their nearest exemplar (DBSCAN: a core point; HDBSCAN: a cluster member), provided the
  row lies within some exemplar's radius (DBSCAN's ``eps``; a member's HDBSCAN core
  distance), so a row far from every dense region is noise (-1), as it would have been
  in the fit. ``noise="nearest"`` puts noise in the nearest exemplar's segment instead,
  for when every customer must have one. At most ``max_exemplars`` (2,000) are kept, so
  the artifact stays under ~0.5 MB; thinning widens the kept radii to cover the rest.
  Density methods choose their own number of segments and ignore ``k``. ``eps``
  defaults to the 90th percentile of the distance to the ``min_samples``-th neighbour
  (``min_samples``: twice the dimension), HDBSCAN's ``min_cluster_size`` to 2 % of the
  sample. DBSCAN's single ``eps`` suits groups of similar density only; prefer HDBSCAN.

Every algorithm ends in an assigner (`assign`), and ``labels_`` are that assigner's
predictions on the training rows, so ``labels_ == predict(X)`` always: a refresh with
unchanged features never moves a customer. Segments are numbered by size, 0 the largest.

``k="auto"`` fits every k in ``k_range`` on the fit sample and picks one by the rule in
`selection` (best mean rank over silhouette, Calinski-Harabasz, Davies-Bouldin and, for
``gmm``, BIC); ``metrics_["k_selection"]`` keeps the whole curve.

Fitting, prediction, explanation and projection run with BLAS/OpenMP pools capped at
``n_threads`` (default 1; see `threads`).
"""

from services.segment.modeling.assign import NOISE
from services.segment.modeling.identity import KeyAssignment, assign_keys
from services.segment.modeling.preprocessing import FeatureScaler
from services.segment.modeling.segmenter import Segmenter

__all__ = ["NOISE", "FeatureScaler", "KeyAssignment", "Segmenter", "assign_keys"]
