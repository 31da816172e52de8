"""``flask rights ...``: buyers' requests the seller handles (access, correction, erasure), each audited.

The domain is vault/rights.py; these commands only parse, call and print. Nothing is printed that holds
PII, except the access export a buyer asked for (to a file of mode 0600, or to stdout with ``--output -``).
"""

from __future__ import annotations

import json
import os
from typing import Any

import click
from sqlalchemy.exc import SQLAlchemyError

from app.cli.errors import CommandGroup
from app.cli.support import cli_actor, order_ref, tenant_by_slug
from app.services import services
from vault import rights
from vault.errors import VaultError
from vault.records import LabelRecord


def _request_options(f: Any) -> Any:
    for option in reversed(
        [
            click.option("--tenant", "tenant_slug", required=True, help="The seller the buyer ordered from."),
            click.option("--order", "order_spec", required=True, help="MARKETPLACE:ORDER_ID, e.g. amazon:503-…"),
            click.option("--request-id", required=True, help="The seller's reference for the buyer's request."),
            click.option(
                "--verified-by", required=True, help="Who at the seller checked the buyer's identity (name or role)."
            ),
        ]
    ):
        f = option(f)
    return f


def _request(request_id: str, verified_by: str) -> rights.RightsRequest:
    try:
        return rights.RightsRequest(actor=cli_actor(), request_id=request_id, verified_by=verified_by)
    except VaultError as exc:
        raise click.BadParameter(str(exc)) from None


@click.group("rights", cls=CommandGroup)
def rights_cli() -> None:
    """Buyers' requests the seller handles: access, correction, erasure. Each is audited with its purpose.

    \b
    The seller checks the buyer's identity first and names who did with --verified-by. This is the
    operator's machine-level tool: it needs a shell with the app's configuration (database and root key);
    in the dashboard, access and correction need the owner role and a fresh second factor.
    """


@rights_cli.command("access")
@_request_options
@click.option(
    "--output", required=True, type=click.Path(dir_okay=False, allow_dash=True), help="File for the JSON export, or -."
)
def rights_access(tenant_slug: str, order_spec: str, request_id: str, verified_by: str, output: str) -> None:
    """Export everything held about one order's buyer, as JSON for the buyer (the file is mode 0600).

    The export is written only once its audit event is committed: an access that can't be audited exports
    nothing. (One that is audited and then can't be written is an audited access with no file: run it again.)
    """
    marketplace, order_id = order_ref(order_spec)
    svc = services()
    with svc.sessions() as session:
        tenant = tenant_by_slug(session, tenant_slug)
        try:
            export = rights.export_order_data(
                session,
                keys=svc.keys,
                tenant_id=tenant.id,
                marketplace=marketplace,
                external_order_id=order_id,
                request=_request(request_id, verified_by),
            )
        except VaultError as exc:
            raise click.ClickException(str(exc)) from None
        try:
            session.commit()  # the access is audited before the buyer's data is written anywhere
        except SQLAlchemyError:
            session.rollback()
            raise click.ClickException("the access could not be audited; nothing was exported") from None
    text = json.dumps(export, ensure_ascii=False, indent=2) + "\n"
    if output == "-":
        click.echo(text, nl=False)
        return
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    click.echo(f"access export for {order_spec} written to {output}")


@rights_cli.command("correct")
@_request_options
@click.option(
    "--address",
    "address_file",
    required=True,
    type=click.File("r", encoding="utf-8"),
    help="JSON file with the corrected address (- for stdin); never on the command line.",
)
def rights_correct(tenant_slug: str, order_spec: str, request_id: str, verified_by: str, address_file: Any) -> None:
    """Replace an order's address with a corrected one: a new sealed version; the old one is shredded.

    \b
    The JSON object has the label record's fields: name, address_line1, city, country_code (required),
    and postal_code, state_or_region, address_line2, address_line3, district_or_county, municipality,
    company, phone, address_type.
    """
    marketplace, order_id = order_ref(order_spec)
    try:
        data = json.load(address_file)
        if not isinstance(data, dict):
            raise TypeError
        label = LabelRecord(**data)
    except (ValueError, TypeError):
        fields = ", ".join(LabelRecord.field_names())
        raise click.ClickException(f"the corrected address must be a JSON object with the fields {fields}") from None
    svc = services()
    with svc.sessions() as session:
        tenant = tenant_by_slug(session, tenant_slug)
        try:
            version = rights.correct_address(
                session,
                keys=svc.keys,
                tenant_id=tenant.id,
                marketplace=marketplace,
                external_order_id=order_id,
                label=label,
                request=_request(request_id, verified_by),
            )
        except VaultError as exc:
            raise click.ClickException(str(exc)) from None
        session.commit()
    click.echo(f"{order_spec}: address corrected (record version {version}; the previous version is shredded)")


@rights_cli.command("erase")
@_request_options
def rights_erase(tenant_slug: str, order_spec: str, request_id: str, verified_by: str) -> None:
    """Erase one order's label data now, whatever its retention deadline, unless a legal hold applies."""
    marketplace, order_id = order_ref(order_spec)
    with services().sessions() as session:
        tenant = tenant_by_slug(session, tenant_slug)
        try:
            outcome = rights.erase_order(
                session,
                tenant_id=tenant.id,
                marketplace=marketplace,
                external_order_id=order_id,
                request=_request(request_id, verified_by),
            )
        except VaultError as exc:
            raise click.ClickException(str(exc)) from None
        session.commit()  # a refusal is audited too
    if outcome.hold_ids:
        raise click.ClickException(f"{order_spec} is under a legal hold and was not erased: {outcome.hold_summary}")
    if outcome.already_erased:
        click.echo(f"{order_spec}: already erased")
    else:
        click.echo(f"{order_spec}: label data erased")
