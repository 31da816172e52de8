"""Operator CLI for dashboard users: ``flask users create|list|unlock|reset-second-factor|disable``, and
``flask users data export|correct|erase`` for a user's own account data (vault/users/own_data.py).

Passwords are read from ``LABELVAULT_USER_PASSWORD`` or a hidden prompt, never from the command line (argv
shows in ``ps`` and shell history). Output names users by e-mail address and id; no secret is printed.
A corrected name or e-mail address is asked for at a prompt and never repeated in output or errors; the
``data`` commands act for the user themself or an owner of their seller (``--by``), whom the audit chain
names by id.
"""

from __future__ import annotations

import json
import os
import sys

import click
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.cli.errors import CommandGroup
from app.cli.support import cli_actor, tenant_by_slug
from app.services import services
from vault.errors import VaultError
from vault.models import User, utcnow
from vault.users.accounts import create_user, disable_user, normalise_email, unlock_user, users_of
from vault.users.own_data import correct_own_data, erase_own_data, export_own_data
from vault.users.roles import OWNER, ROLES
from vault.users.second_factor import reset_second_factor

PASSWORD_ENV = "LABELVAULT_USER_PASSWORD"  # noqa: S105 - the variable's name, not a password


@click.group("users", cls=CommandGroup)
def users_cli() -> None:
    """Dashboard users of a seller: create the first owner, list, unlock, reset two-step, disable; their data."""


def _user(session: Session, email: str) -> User:
    if email.isdigit():  # an erased user's address is a placeholder: the id finds them too
        by_id = session.get(User, int(email))
        if by_id is None:
            raise click.ClickException("no user with that id (see `flask users list`)")
        return by_id
    try:
        address = normalise_email(email)
    except VaultError as exc:
        raise click.ClickException(str(exc)) from None
    user = session.scalar(select(User).where(User.email == address))
    if user is None:
        raise click.ClickException("no user with that e-mail address (see `flask users list`)")
    return user


@users_cli.command("create")
@click.option("--tenant", "tenant_slug", required=True, help="The tenant (seller) the user belongs to.")
@click.option("--email", required=True, help="The user's e-mail address (their sign-in name).")
@click.option("--name", "display_name", default="", help="The name shown in the dashboard.")
@click.option("--role", type=click.Choice(ROLES), default=OWNER, show_default=True, help="The user's role.")
def users_create(tenant_slug: str, email: str, display_name: str, role: str) -> None:
    """Create a user with a password, typically the tenant's first owner, who invites the others.

    \b
    The password is read from LABELVAULT_USER_PASSWORD or asked for at a hidden prompt (twice); at least
    12 characters. At first sign-in the user sets up two-step verification (a QR code for an
    authenticator app) and gets recovery codes.
    """
    password = os.environ.get(PASSWORD_ENV) or click.prompt(
        "Password (at least 12 characters)", hide_input=True, confirmation_prompt=True
    )
    with services().sessions() as session:
        tenant = tenant_by_slug(session, tenant_slug)
        try:
            user = create_user(
                session,
                tenant=tenant,
                email=email,
                role=role,
                password=password,
                display_name=display_name,
                actor=cli_actor(),
            )
        except VaultError as exc:
            raise click.ClickException(str(exc)) from None
        session.commit()
        click.echo(f"user {user.id} ({user.email}) created as {role} of {tenant_slug}")
        click.echo("two-step verification is set up at the first sign-in")


@users_cli.command("list")
@click.option("--tenant", "tenant_slug", required=True, help="The tenant whose users to list.")
def users_list(tenant_slug: str) -> None:
    """List a tenant's users: id, e-mail, role, two-step state, status."""
    now = utcnow()
    with services().sessions() as session:
        for u in users_of(session, tenant_id=tenant_by_slug(session, tenant_slug).id):
            state = (
                "disabled"
                if u.disabled_at
                else "invited"
                if u.password_hash is None
                else "locked"
                if u.locked_until and u.locked_until > now
                else "active"
            )
            two_step = "two-step on" if u.totp_enabled_at else "two-step not set up"
            click.echo(f"{u.id}\t{u.email}\t{u.role}\t{two_step}\t{state}")


@users_cli.command("unlock")
@click.argument("email")
def users_unlock(email: str) -> None:
    """Lift a user's lockout after repeated failed sign-ins."""
    with services().sessions() as session:
        user = _user(session, email)
        unlock_user(session, user=user, actor=cli_actor())
        session.commit()
    click.echo(f"user {user.id} unlocked")


@users_cli.command("reset-second-factor")
@click.argument("email")
@click.option("--yes", is_flag=True, help="Don't ask for confirmation.")
def users_reset_second_factor(email: str, yes: bool) -> None:
    """Forget a user's authenticator and recovery codes (lost phone): they set it up again at next sign-in.

    Check who is asking first: whoever knows the password can then enrol their own authenticator.
    """
    with services().sessions() as session:
        user = _user(session, email)
        if not yes:
            click.confirm(f"Reset two-step verification of user {user.id}? Their sessions end.", abort=True)
        reset_second_factor(session, user=user, actor=cli_actor())
        session.commit()
    click.echo(f"user {user.id}: two-step verification reset; sessions ended")


@users_cli.command("disable")
@click.argument("email")
def users_disable(email: str) -> None:
    """Disable a user for good and end their sessions (a tenant keeps at least one owner)."""
    with services().sessions() as session:
        user = _user(session, email)
        try:
            disable_user(session, user=user, actor=cli_actor())
        except VaultError as exc:
            raise click.ClickException(str(exc)) from None
        session.commit()
    click.echo(f"user {user.id} disabled")


@users_cli.group("data", cls=CommandGroup)
def users_data_cli() -> None:
    """A user's own account data (name, e-mail): export, correct, erase, for them or an owner of their seller."""


_BY = click.option(
    "--by",
    "by_email",
    required=True,
    help="Who asks, after you checked who they are: the user themself or an owner of their seller (e-mail or id).",
)


def _pair(session: Session, email: str, by_email: str) -> tuple[User, User]:
    user, by = _user(session, email), _user(session, by_email)
    if by.tenant_id != user.tenant_id:
        raise click.ClickException("--by must be the user themself or an owner of their seller")
    return user, by


@users_data_cli.command("export")
@click.argument("email")
@_BY
@click.option("--out", "out", default="-", show_default=True, help="A file to write the JSON to; - is stdout.")
def users_data_export(email: str, by_email: str, out: str) -> None:
    """Everything labelvault holds about a dashboard user, as JSON (audited as an access)."""
    with services().sessions() as session:
        user, by = _pair(session, email, by_email)
        try:
            export = export_own_data(session, by=by, user=user)
        except VaultError as exc:
            raise click.ClickException(str(exc)) from None
        session.commit()
    text = json.dumps(export, ensure_ascii=False, indent=2) + "\n"
    if out == "-":
        sys.stdout.write(text)
        return
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # the user's data: readable by you only
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    click.echo(f"user {export['user']['id']}: data exported to {out}", err=True)


@users_data_cli.command("correct")
@click.argument("email")
@_BY
def users_data_correct(email: str, by_email: str) -> None:
    """Correct a user's name and/or e-mail address; both are asked for at a prompt (empty keeps the value)."""
    with services().sessions() as session:
        user, by = _pair(session, email, by_email)
        name = click.prompt("New name (empty: keep)", default="", show_default=False).strip()
        address = click.prompt("New e-mail address (empty: keep)", default="", show_default=False).strip()
        try:
            changed = correct_own_data(
                session, by=by, user=user, display_name=name[:200] or None, email=address or None
            )
        except VaultError as exc:
            raise click.ClickException(str(exc)) from None
        session.commit()
        uid = user.id
    click.echo(f"user {uid}: corrected {', '.join(changed)}" if changed else f"user {uid}: nothing changed")


@users_data_cli.command("erase")
@click.argument("email")
@_BY
@click.option("--yes", is_flag=True, help="Don't ask for confirmation.")
def users_data_erase(email: str, by_email: str, yes: bool) -> None:
    """Erase a user's account data: name and e-mail replaced by placeholders, password and two-step gone,
    sessions ended, the account disabled (a seller keeps at least one owner)."""
    with services().sessions() as session:
        user, by = _pair(session, email, by_email)
        if not yes:
            click.confirm(f"Erase the account data of user {user.id}? This can't be undone.", abort=True)
        try:
            erase_own_data(session, by=by, user=user)
        except VaultError as exc:
            raise click.ClickException(str(exc)) from None
        session.commit()
        uid = user.id
    click.echo(f"user {uid}: account data erased; the account is disabled")
