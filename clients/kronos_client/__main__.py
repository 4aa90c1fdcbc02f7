"""``python -m kronos_client`` = ``kronos-client``."""

import sys

from kronos_client.cli import main

sys.exit(main())
