"""Layer 6, audit: metrics over truth, records, scores, lists and consequences."""
