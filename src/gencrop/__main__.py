"""`python -m gencrop` (also what `accelerate launch -m gencrop ...` runs)."""

from .cli import console

console()
