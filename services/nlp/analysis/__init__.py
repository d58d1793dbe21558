"""From texts to stored analyses: language, sentiment, aspects, transcript dynamics."""
