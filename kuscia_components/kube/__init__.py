"""Talking to Kubernetes with the deployer's kubeconfig: one transport for checks and peering.

`kubeconfig` resolves the file and context (at call time, never stored), `transport` sends one
request with a bounded answer, `errors` turns the API server's refusals into typed errors. Kept
free of import-time work: the official client is imported when a kubeconfig is first loaded.
"""
