"""The WSGI app for gunicorn (``wsgi:app``) and for ``flask ...`` run in the repository.

Under Flask's CLI (which sets ``FLASK_RUN_FROM_CLI``), a configuration that must not run or an installation
missing a module ends the command with one line on stderr: raised, Flask would print a traceback, or report
the missing module and then every labelvault command as "No such command" (they come from this app). Under
gunicorn it is raised: the worker fails to boot and gunicorn stops, as it should.
"""

import os

from app.settings import SettingsError

try:
    from app import create_app

    app = create_app()
except (SettingsError, ImportError) as exc:
    if os.environ.get("FLASK_RUN_FROM_CLI") != "true":
        raise
    if isinstance(exc, SettingsError):
        raise SystemExit(f"Error: {exc}") from None
    raise SystemExit(f"Error: cannot load labelvault: {exc} (./scripts/bootstrap installs it)") from None
