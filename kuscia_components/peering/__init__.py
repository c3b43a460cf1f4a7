"""Peering with partners: bundle (pure checks), props + provider (the PartnerLink engine), resource,
component (program glue, Peering), client (KusciaAPI) and diagnosis. Keep this file import-free."""
