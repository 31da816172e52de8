"""The WSGI app for gunicorn (``wsgi:app``) and for ``flask ...`` run in the repository.

A configuration that must not run, or an installation missing a module, ends the process with one line on
stderr. Raised as anything else, Flask's CLI would print a traceback, or report the missing module and
then every labelvault command as "No such command" (its commands come from this app).
"""

from app.settings import SettingsError

try:
    from app import create_app

    app = create_app()
except SettingsError as exc:
    raise SystemExit(f"Error: {exc}") from None
except ImportError as exc:
    raise SystemExit(f"Error: cannot load labelvault: {exc} (./scripts/bootstrap installs it)") from None
