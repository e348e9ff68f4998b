"""``python -m explorer``: the command-line interface."""

import sys

from explorer.cli import main

sys.exit(main())
