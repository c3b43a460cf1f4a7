"""Test suite. Anything under tests/emulator is emulation, not real Kuscia or Kubernetes."""
