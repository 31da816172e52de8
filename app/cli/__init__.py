"""The operator CLI: one module per command group, the same commands under ``flask`` and ``labelvault``.

``flask ...`` (in the repository) finds them through the app: wsgi.py builds it and :func:`init_app` adds
them to ``app.cli``. ``labelvault ...`` (:func:`main`, the console script; also ``python -m app.cli``)
builds the app from the settings (``LABELVAULT_*``) itself, so it runs from any directory and keeps its
state in the instance folder the settings name. Registering commands does nothing else: whatever the
process needs configured is configured by ``create_app``.

Groups and their modules: ``vault`` (app/cli/vault.py, with purge, backup, restore, epoch and
retention-policy from app/cli/retention.py), ``tenants``, ``accounts``, ``carriers``, ``sync``, ``clients``, ``users``,
``audit``, ``holds``, ``rights``, ``worker``; what they share is in app/cli/support.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import click
from flask import Flask
from flask.cli import FlaskGroup

from app.cli.accounts import accounts_cli
from app.cli.audit import audit_cli
from app.cli.carriers import carriers_cli
from app.cli.clients import clients_cli
from app.cli.errors import ConfigurationError
from app.cli.holds import holds_cli
from app.cli.labels import labels_cli
from app.cli.rights import rights_cli
from app.cli.shipments import shipments_cli
from app.cli.sync import sync_cli
from app.cli.tenants import tenants_cli
from app.cli.users import users_cli
from app.cli.vault import vault_cli
from app.cli.worker import worker_cli
from app.settings import SettingsError

#: Every command group, in the order ``--help`` lists them (alphabetically, as click sorts).
COMMANDS: tuple[click.Command, ...] = (
    accounts_cli,
    audit_cli,
    carriers_cli,
    clients_cli,
    holds_cli,
    labels_cli,
    rights_cli,
    shipments_cli,
    sync_cli,
    tenants_cli,
    users_cli,
    vault_cli,
    worker_cli,
)

HELP = """labelvault's operator commands: the vault's keys, tenants, marketplace and carrier accounts, their sync,
label API clients, order reprints, shipment confirmations, dashboard users, the audit chain, retention, legal
holds, buyers' rights requests and background work. The same commands as `flask ...` in the repository, from
any directory.

Configuration comes from LABELVAULT_* environment variables (README.md lists them); the database, the
local keyring and other state live in the instance folder, LABELVAULT_INSTANCE_PATH.
"""


def init_app(app: Flask) -> None:
    """Add the command groups to ``flask`` (the app's own CLI)."""
    for command in COMMANDS:
        app.cli.add_command(command)


def _app_from_settings() -> Flask:
    # Imported here, not at the top: create_app imports this package to register the commands.
    from app import create_app

    try:
        return create_app()
    except SettingsError as exc:
        raise ConfigurationError(str(exc)) from None
    except ImportError as exc:  # a module of the app (or one it needs) is missing: the installation is incomplete
        raise ConfigurationError(f"cannot load labelvault: {exc} (./scripts/bootstrap installs it)") from None


def labelvault_cli() -> FlaskGroup:
    """The ``labelvault`` command group: Flask's own commands (run, shell, routes) plus every group above.

    The groups are the group's own, so ``labelvault GROUP --help`` works before the app can be built
    (an unset or invalid setting); the app is built from the settings when a command runs.
    """
    group = FlaskGroup(name="labelvault", help=HELP, create_app=_app_from_settings, commands=COMMANDS)
    # Flask's -A/--app picks which app `flask` loads; labelvault always builds its own, so the option
    # would be accepted and then ignored. Not offering it is clearer.
    group.params = [param for param in group.params if param.name != "app"]
    return group


def main(args: Sequence[str] | None = None) -> None:
    """The ``labelvault`` console script."""
    labelvault_cli().main(args=args, prog_name="labelvault")
