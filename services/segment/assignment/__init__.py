"""Who is in which segment: activating a run for everyone, and re-assigning on activity."""
