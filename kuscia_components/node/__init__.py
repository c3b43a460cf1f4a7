"""The node: pure builders (kuscia.yaml, manifests) and the Pulumi resources that deploy one party."""
