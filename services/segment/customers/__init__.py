"""One customer as the segment service sees them."""
