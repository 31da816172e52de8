"""``python -m printagent``: the same as ``labelvault-print``."""

from printagent.cli import main

main()
