"""The inference stage: windows of readings to a model, a score, a trip request."""
