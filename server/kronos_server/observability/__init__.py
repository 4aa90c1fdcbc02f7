"""Metrics and logging shared by every transport."""
