"""`python -m fleetpulse` runs the CLI, as the `fleetpulse` console script does."""

import sys

from fleetpulse.app.cli import main

sys.exit(main())
