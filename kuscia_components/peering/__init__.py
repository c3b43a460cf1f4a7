"""Peering with partners: the KusciaAPI client, the link provider, diagnosis and the Peering component."""
