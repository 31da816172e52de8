"""``python -m app.cli``: the ``labelvault`` command without the console script installed."""

from app.cli import main

main()
