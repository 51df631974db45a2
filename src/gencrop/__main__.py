"""`python -m gencrop` (also what `accelerate launch -m gencrop ...` runs)."""

import sys

from .cli import main

sys.exit(main())
