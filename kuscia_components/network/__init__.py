"""A whole network of parties: specs, the pure phase planner and the Automation API runner."""
