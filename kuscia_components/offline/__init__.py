"""Running the program without a cluster: Pulumi mocks, stack files, render."""
