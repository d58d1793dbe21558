"""Training a segmentation run: features, CLV, fit, explanation, stable keys, promotion."""
