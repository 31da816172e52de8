"""Operator CLI for dashboard users: ``flask users create|list|unlock|reset-second-factor|disable``.

Passwords are read from ``LABELVAULT_USER_PASSWORD`` or a hidden prompt, never from the command line (argv
shows in ``ps`` and shell history). Output names users by e-mail address and id; no secret is printed.
"""

from __future__ import annotations

import os

import click
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.cli.errors import CommandGroup
from app.cli.support import cli_actor, tenant_by_slug
from app.services import services
from vault.errors import VaultError
from vault.models import User, utcnow
from vault.users.accounts import create_user, disable_user, normalise_email, unlock_user, users_of
from vault.users.roles import OWNER, ROLES
from vault.users.second_factor import reset_second_factor

PASSWORD_ENV = "LABELVAULT_USER_PASSWORD"  # noqa: S105 - the variable's name, not a password


@click.group("users", cls=CommandGroup)
def users_cli() -> None:
    """Dashboard users of a seller: create the first owner, list, unlock, reset two-step, disable."""


def _user(session: Session, email: str) -> User:
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
