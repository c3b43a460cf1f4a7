"""`python -m kuscia_components`: the same command line as `kuscia-p2p`."""

import sys

from kuscia_components.cli.main import main

try:
    sys.exit(main())
except KeyboardInterrupt:
    sys.exit(130)
