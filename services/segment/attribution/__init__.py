"""Cross-channel attribution: customer journeys up to each order, credited to channels by
last touch, first touch, linear, Markov-chain removal effect and Shapley values."""
