"""Segmentation runs: ask for a training, follow it, promote it."""
