"""``flask rights ...``: buyers' requests the seller handles (access, correction, erasure), each audited.

The domain is vault/rights.py; these commands only parse, call and print. Nothing is printed that holds
PII, except the access export a buyer asked for (to a file of mode 0600, or to stdout with ``--output -``).
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Any

import click
from sqlalchemy.exc import SQLAlchemyError

from app.cli.errors import CommandGroup
from app.cli.support import cli_actor, order_ref, tenant_by_slug
from app.services import services
from connectors import registry
from vault import index_rotation, rights, rights_requests
from vault.blind_index import PersonValues
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


# -- rights requests as a workflow (vault/rights_requests.py) ---------------------------------------------------


@rights_cli.group("request", cls=CommandGroup)
def request_cli() -> None:
    """A person's request found by who they are, not by an order id: open, match, confirm, carry out.

    \b
    1. open       the person's values (from a JSON file, never the command line), the identity check
                  (or notice: a marketplace's own notice, its order ids locked in)
    2. matches    finds their orders on every marketplace and account, shown masked
    3. confirm    the orders that are theirs (by the ids matches printed)
    4. carry-out  access (JSON export), correction or erasure of exactly the confirmed orders
    list shows what is open, due and overdue; export fetches the sealed export a marketplace's request left.
    """


def _fail(exc: Exception) -> click.ClickException:
    return click.ClickException(str(exc))


@request_cli.command("open")
@click.option("--tenant", "tenant_slug", required=True, help="The seller the person ordered from.")
@click.option("--kind", type=click.Choice(rights_requests.KINDS), required=True, help="What the person asks for.")
@click.option("--reference", required=True, help="The seller's reference for the request (no personal data).")
@click.option("--verified-by", required=True, help="Who at the seller checked the person's identity.")
@click.option("--verification", required=True, help="How the identity was checked, e.g. 'ID card seen in shop'.")
@click.option("--jurisdiction", default="default", show_default=True, help="Sets the due date: eu, uk, us-ca, br, …")
@click.option(
    "--person",
    "person_file",
    required=True,
    type=click.File("r", encoding="utf-8"),
    help='JSON file (- for stdin): {"name", "phone", "phone_region", "postcode", "email"}; a correction adds '
    '"correction": {field: new value}.',
)
def request_open(
    tenant_slug: str,
    kind: str,
    reference: str,
    verified_by: str,
    verification: str,
    jurisdiction: str,
    person_file: Any,
) -> None:
    """Open a rights request for a person; prints its id and due date."""
    try:
        data = json.load(person_file)
        if not isinstance(data, dict):
            raise TypeError
        correction = data.pop("correction", None)
        person = PersonValues(**data)
    except (ValueError, TypeError):
        raise click.ClickException(
            "the person file must be a JSON object with name, phone, phone_region, postcode, email (and correction)"
        ) from None
    svc = services()
    with svc.sessions() as session:
        tenant = tenant_by_slug(session, tenant_slug)
        try:
            row = rights_requests.open_request(
                session, keys=svc.keys, tenant_id=tenant.id, kind=kind, person=person, reference=reference,
                verified_by=verified_by, verification=verification, actor=cli_actor(), jurisdiction=jurisdiction,
                correction=correction,
            )  # fmt: skip
        except (VaultError, ValueError) as exc:
            raise _fail(exc) from None
        session.commit()
        click.echo(f"request {row.id} opened ({kind}), due {row.due_at:%Y-%m-%d}")


def _write_export(content: dict[str, Any], output: str) -> None:
    text = json.dumps(content, ensure_ascii=False, indent=2) + "\n"
    if output == "-":
        click.echo(text, nl=False)
        return
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


@request_cli.command("notice")
@click.option("--tenant", "tenant_slug", required=True, help="The seller the notice is for.")
@click.option("--marketplace", type=click.Choice(list(registry.PLATFORMS)), required=True, help="Who sent it.")
@click.option(
    "--kind",
    type=click.Choice([rights_requests.ERASURE, rights_requests.ACCESS]),
    default=rights_requests.ERASURE,
    show_default=True,
    help="What the notice asks for.",
)
@click.option("--notice-id", required=True, help="The notice's own id (the request's reference).")
@click.option(
    "--notice-date",
    type=click.DateTime(["%Y-%m-%d"]),
    required=True,
    help="When it was sent, YYYY-MM-DD (the due date counts from it).",
)
@click.option("--order", "order_ids", multiple=True, help="An order id the notice names (repeatable).")
@click.option(
    "--orders",
    "orders_file",
    type=click.File("r", encoding="utf-8"),
    help="A file of the notice's order ids, one per line (- for stdin).",
)
@click.option("--jurisdiction", default="default", show_default=True, help="Sets the due date: eu, uk, us-ca, br, …")
def request_notice(
    tenant_slug: str,
    marketplace: str,
    kind: str,
    notice_id: str,
    notice_date: datetime,
    order_ids: tuple[str, ...],
    orders_file: Any,
    jurisdiction: str,
) -> None:
    """Open a request from a marketplace's own notice (an Amazon deletion notice, say): the marketplace checked
    who asked, so the orders it names are confirmed at once; carry it out with carry-out."""
    try:
        listed = orders_file.read().splitlines() if orders_file else []
        ids = registry.notice_order_ids(marketplace, [*order_ids, *listed])
    except ValueError as exc:
        raise _fail(exc) from None
    svc = services()
    with svc.sessions() as session:
        tenant = tenant_by_slug(session, tenant_slug)
        try:
            row, named = rights_requests.open_notice(
                session, keys=svc.keys, tenant_id=tenant.id, marketplace=marketplace, kind=kind, notice_id=notice_id,
                notice_date=notice_date.replace(tzinfo=UTC), order_ids=ids, actor=cli_actor(),
                jurisdiction=jurisdiction, due_days=svc.settings.due_days,
            )  # fmt: skip
        except (VaultError, ValueError) as exc:
            raise _fail(exc) from None
        session.commit()
        click.echo(
            f"request {row.id} opened ({kind}) from {registry.name_of(marketplace)}'s notice: "
            f"{named} of {len(ids)} orders found, due {row.due_at:%Y-%m-%d}"
        )


@request_cli.command("export")
@click.option("--tenant", "tenant_slug", required=True, help="The seller.")
@click.option("--id", "request_id", type=int, required=True, help="The request's id.")
@click.option(
    "--output", required=True, type=click.Path(dir_okay=False, allow_dash=True), help="File for the JSON, or -."
)
def request_export(tenant_slug: str, request_id: int, output: str) -> None:
    """Fetch the sealed access export a marketplace's request left (Shopify's data request), to pass it on;
    written (mode 0600) only once the fetch is audited."""
    svc = services()
    with svc.sessions() as session:
        tenant = tenant_by_slug(session, tenant_slug)
        try:
            content = rights_requests.fetch_request_export(
                session, keys=svc.keys, tenant_id=tenant.id, request_id=request_id, actor=cli_actor()
            )
        except VaultError as exc:
            raise _fail(exc) from None
        session.commit()
    _write_export(content, output)
    if output != "-":
        click.echo(f"request {request_id}: export written to {output}")


@request_cli.command("list")
@click.option("--tenant", "tenant_slug", required=True, help="The seller.")
def request_list(tenant_slug: str) -> None:
    """The open requests, soonest due first; overdue ones are marked. Each says where it came from: the
    marketplace's name, or ``seller`` for one the seller's team opened."""
    with services().sessions() as session:
        tenant = tenant_by_slug(session, tenant_slug)
        for due in rights_requests.open_requests(session, tenant_id=tenant.id):
            flag = "OVERDUE" if due.overdue else "due"
            code = rights_requests.marketplace_of(due.source)
            came_from = registry.name_of(code) if code else "seller"
            click.echo(f"{due.id}\t{due.kind}\t{flag} {due.due_at:%Y-%m-%d}\t{came_from}\t{due.reference}")


def _print_matches(found: list[rights_requests.Match]) -> None:
    if not found:
        click.echo("no matching orders")
    for m in found:
        state = "confirmed" if m.confirmed else "unconfirmed"
        named = " (named by the marketplace)" if m.named else ""
        click.echo(f"{m.order_id}\t{m.marketplace}:{m.external_order_id}\t{m.account}\t{m.masked}\t{state}{named}")


@request_cli.command("matches")
@click.option("--tenant", "tenant_slug", required=True, help="The seller.")
@click.option("--id", "request_id", type=int, required=True, help="The request's id (from open or list).")
def request_matches(tenant_slug: str, request_id: int) -> None:
    """Find the person's orders through the blind index and print them masked, with the ids to confirm."""
    svc = services()
    with svc.sessions() as session:
        tenant = tenant_by_slug(session, tenant_slug)
        try:
            found = rights_requests.find_matches(
                session, keys=svc.keys, tenant_id=tenant.id, request_id=request_id, actor=cli_actor()
            )
        except VaultError as exc:
            raise _fail(exc) from None
        session.commit()
    _print_matches(found)


@request_cli.command("confirm")
@click.option("--tenant", "tenant_slug", required=True, help="The seller.")
@click.option("--id", "request_id", type=int, required=True, help="The request's id.")
@click.option("--order", "order_ids", type=int, multiple=True, help="An order id matches printed (repeatable).")
def request_confirm(tenant_slug: str, request_id: int, order_ids: tuple[int, ...]) -> None:
    """Confirm which matched orders are the person's (the others stay untouched)."""
    with services().sessions() as session:
        tenant = tenant_by_slug(session, tenant_slug)
        try:
            n = rights_requests.confirm(
                session, tenant_id=tenant.id, request_id=request_id, order_ids=order_ids, actor=cli_actor()
            )
        except VaultError as exc:
            raise _fail(exc) from None
        session.commit()
    click.echo(f"request {request_id}: {n} orders confirmed")


@request_cli.command("carry-out")
@click.option("--tenant", "tenant_slug", required=True, help="The seller.")
@click.option("--id", "request_id", type=int, required=True, help="The request's id.")
@click.option(
    "--output", type=click.Path(dir_okay=False, allow_dash=True), help="Access: file for the JSON export (or -)."
)
def request_carry_out(tenant_slug: str, request_id: int, output: str | None) -> None:
    """Carry the request out on the confirmed orders; legal holds keep what they hold, and are named."""
    svc = services()
    with svc.sessions() as session:
        tenant = tenant_by_slug(session, tenant_slug)
        row = rights_requests.get_request(session, tenant_id=tenant.id, request_id=request_id)
        if row.kind == rights_requests.ACCESS and not output:
            raise click.ClickException("an access request needs --output for its JSON export")
        try:
            outcome = rights_requests.carry_out(
                session, keys=svc.keys, tenant_id=tenant.id, request_id=request_id, actor=cli_actor()
            )
        except VaultError as exc:
            raise _fail(exc) from None
        session.commit()  # audited before anything is exported
    if outcome.export is not None and output:
        _write_export(outcome.export, output)
    for name, summary in outcome.held.items():
        click.echo(f"{name}: kept by a legal hold: {summary}")
    if output != "-":
        click.echo(f"request {request_id}: {len(outcome.done)} orders done, {len(outcome.held)} kept by holds")


@rights_cli.command("reindex")
@click.option("--tenant", "tenant_slug", required=True, help="The seller.")
@click.option("--rotate", is_flag=True, help="First make a new blind-index key version (then re-index online).")
def rights_reindex(tenant_slug: str, rotate: bool) -> None:
    """Give every label record blind-index entries under the active index key (after a rotation, or for
    records sealed before blind indexes); destroys retired index key versions once their grace has passed."""
    svc = services()
    with svc.sessions() as session:
        tenant = tenant_by_slug(session, tenant_slug)
        if rotate:
            version = index_rotation.rotate_index_key(session, keys=svc.keys, tenant_id=tenant.id, actor=cli_actor())
            click.echo(f"index key version {version} is active")
        result = index_rotation.reindex(session, keys=svc.keys, tenant_id=tenant.id, actor=cli_actor())
    click.echo(
        f"{result.reindexed} records re-indexed; destroyed versions: {list(result.destroyed_versions) or 'none'}; "
        f"kept until their grace has passed: {list(result.kept_versions) or 'none'}"
    )
