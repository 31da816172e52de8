"""Dashboard roles (owner, operator, viewer) and the least role each permission needs."""

from __future__ import annotations

from typing import Final

from vault.users.base import UserError

OWNER: Final = "owner"
OPERATOR: Final = "operator"
VIEWER: Final = "viewer"
ROLES: Final = (OWNER, OPERATOR, VIEWER)
_RANK: Final = {VIEWER: 0, OPERATOR: 1, OWNER: 2}

#: What each role may do: the least role a permission needs. docs/privacy-controls.md has the same table
#: (tests/test_permissions_doc.py compares them).
PERMISSIONS: Final = {
    "view": VIEWER,  # overview, accounts, masked orders, clients, audit log, retention status
    "sync": OPERATOR,  # start a sync
    "label-preview": OPERATOR,  # see a label (buyer data in clear), after a fresh second factor
    "labels-print": OPERATOR,  # print the day's labels (released as a batch), after a fresh second factor
    "clients": OPERATOR,  # create and revoke warehouse clients, change their ranges and profiles
    "rights-erasure": OPERATOR,  # a buyer's erasure request (shows no buyer data), after a fresh second factor
    "rights-access": OWNER,  # a buyer's access request: their full record, phone included, fresh second factor
    "rights-correction": OWNER,  # a buyer's corrected ship-to address, after a fresh second factor
    "accounts": OWNER,  # connect and remove marketplace accounts
    "carriers": OWNER,  # see, add and remove carrier accounts (their credentials buy postage), fresh second factor
    "retention": OWNER,  # retention policy and legal holds
    "reprints": OWNER,  # grant an order one more label than the reissue cap
    "users": OWNER,  # invite users, change roles, disable; the dashboard allowlist
    "settings": OWNER,  # the organisation's return address and time zone
}


def may(role: str, permission: str) -> bool:
    """Whether a user with ``role`` may do ``permission`` (see :data:`PERMISSIONS`)."""
    need = PERMISSIONS.get(permission)
    return need is not None and _RANK.get(role, -1) >= _RANK[need]


def check_role(role: str) -> str:
    """``role`` if it is one of :data:`ROLES`; :class:`UserError` otherwise."""
    if role not in ROLES:
        raise UserError(f"a role is one of {', '.join(ROLES)}")
    return role
