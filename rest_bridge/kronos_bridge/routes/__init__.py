"""One router per resource: predict, health, models, metrics."""
