"""Legacy class path only. Stacks written before the peering split hold a PartnerLink provider
pickled as `kuscia_components.peering.link.PartnerLinkProvider`; the engine unpickles it for
refresh and destroy, so that name must keep resolving. New code imports `peering.provider`,
`peering.resource` or `peering.component` (tests/test_provider_pickle.py pins both paths)."""

from kuscia_components.peering.provider import PartnerLinkProvider

__all__ = ["PartnerLinkProvider"]
