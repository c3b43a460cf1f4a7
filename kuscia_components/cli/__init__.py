"""The command line (`kuscia-p2p`, `python -m kuscia_components`). Nothing in the library imports it."""
