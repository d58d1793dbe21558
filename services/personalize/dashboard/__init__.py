"""The personalize dashboard: offers, allocation, experiments and off-policy estimates."""
