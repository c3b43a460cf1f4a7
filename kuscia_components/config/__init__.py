"""Input layer: the `kuscia:` settings of a stack, parsed into typed config. Imports no Pulumi."""
