"""`python -m fleetpulse` runs the CLI, as the `fleetpulse` console script does."""

import sys

from fleetpulse.cli import main

sys.exit(main())
