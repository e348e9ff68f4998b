"""``python -m explorer``: the command-line interface."""

import sys

from explorer.cli.main import main

sys.exit(main())
