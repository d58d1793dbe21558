"""Behaviour anomalies: customers whose recent window departs from their own history or
from the population, and segments whose size or value left their forecast."""
