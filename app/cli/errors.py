"""What goes wrong around a command, as the one line an operator can act on (no traceback, no secret).

Two places: building the app (an invalid configuration, a missing module) and running a command (the
database unreachable, the root key unusable). The first is a :class:`ConfigurationError`, which Flask's
CLI shows as one line in ``--help`` too; the second is translated by :class:`CommandGroup`, the class of
every command group, so ``flask ...`` and ``labelvault ...`` say the same. A command's own errors (an
unknown tenant, a bad argument) stay ``click`` errors raised where they happen.
"""

from __future__ import annotations

from typing import IO, Any

import click
from flask.cli import AppGroup, NoAppException, ScriptInfo
from sqlalchemy.exc import OperationalError

from app.services import services
from vault.errors import VaultError


class ConfigurationError(NoAppException):
    """The app cannot be built: shown as ``Error: <reason>``, one line, without the usage text.

    A :class:`~flask.cli.NoAppException`, because that is what Flask's CLI reports as a line of its own
    when it lists the commands (``--help``) instead of printing a traceback.
    """

    def show(self, file: IO[Any] | None = None) -> None:
        click.ClickException.show(self, file)


class CommandGroup(AppGroup):
    """A command group whose commands report an unreachable database or an unusable root key in one line."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except OperationalError as exc:
            raise click.ClickException(database_failure(ctx, exc)) from None
        except VaultError as exc:  # the vault's messages name no PII and no secret
            raise click.ClickException(str(exc)) from None


def database_failure(ctx: click.Context, exc: OperationalError) -> str:
    """``database <URL, password masked>: <the driver's first line>``."""
    url = services(ctx.ensure_object(ScriptInfo).load_app()).engine.url
    reason = (str(exc.orig).strip().splitlines() or [type(exc.orig).__name__])[0]
    if url.password:
        reason = reason.replace(str(url.password), "***")
    return f"database {url.render_as_string(hide_password=True)}: {reason}"
