"""The tenant's dashboard address ranges: with none set, only the global allowlist applies."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy.orm import Session

from vault.audit import append_event
from vault.models import DashboardAllowlist
from vault.netaddr import AddressError, IPAddress, in_any, parse_ip, parse_network
from vault.users.base import UserError


def dashboard_cidrs(session: Session, *, tenant_id: int) -> list[str]:
    """The tenant's dashboard ranges (empty: only the global allowlist applies)."""
    row = session.get(DashboardAllowlist, tenant_id)
    return list(row.cidrs) if row is not None else []


def dashboard_allows(session: Session, *, tenant_id: int, ip: str | None) -> bool:
    """Whether the tenant's dashboard allowlist lets ``ip`` in (an unparseable address never)."""
    cidrs = dashboard_cidrs(session, tenant_id=tenant_id)
    if not cidrs:
        return True
    try:
        address: IPAddress = parse_ip(ip or "")
    except AddressError:
        return False
    return in_any(address, (parse_network(c, allow_broad=True) for c in cidrs))


def set_dashboard_cidrs(
    session: Session,
    *,
    tenant_id: int,
    cidrs: Iterable[str],
    actor: str,
    current_ip: str | None,
    allow_broad: bool = False,
    now: datetime | None = None,
) -> list[str]:
    """Replace the tenant's dashboard ranges; refused if they would shut out ``current_ip``. Audited."""
    networks: list[str] = []
    for text in cidrs:
        text = text.strip()
        if not text:
            continue
        try:
            network = str(parse_network(text, allow_broad=allow_broad))
        except AddressError as exc:
            raise UserError(f"range {text!r}: {exc}") from None
        if network not in networks:
            networks.append(network)
    if networks and current_ip is not None:
        try:
            inside = in_any(parse_ip(current_ip), (parse_network(n, allow_broad=True) for n in networks))
        except AddressError:
            inside = False
        if not inside:
            raise UserError("these ranges would shut out the address you are using now; include it")
    row = session.get(DashboardAllowlist, tenant_id)
    if row is None:
        row = DashboardAllowlist(tenant_id=tenant_id, cidrs=networks, updated_by=actor[:100])
        session.add(row)
    else:
        row.cidrs, row.updated_by = networks, actor[:100]
    session.flush()
    append_event(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="dashboard.allowlist",
        ip=current_ip,
        purpose="administration",
        details={"cidrs": networks},
        now=now,
    )
    return networks
