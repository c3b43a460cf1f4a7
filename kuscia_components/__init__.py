"""Pulumi components that deploy Kuscia autonomy nodes on Kubernetes and peer them."""

__version__ = "0.1.0"
