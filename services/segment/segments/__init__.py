"""The active segmentation's segments, their members and their history."""
