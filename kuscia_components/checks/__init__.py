"""Checks before and after a deploy (preflight, verify): Kubernetes, database, routes."""
