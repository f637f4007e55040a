"""Talking to a running server (health, models, metrics) and reading its logs."""
