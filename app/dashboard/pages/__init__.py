"""The dashboard's pages, one module per area, all on the dashboard blueprint (endpoints ``dashboard.<view>``).

overview, accounts (marketplace accounts), connect_tiktok and connect_walmart (each platform's connect page),
orders (masked, and the label preview), clients (warehouse clients of the label API),
carriers (the carrier accounts the vault buys labels from), audit (the audit log),
retention (and legal holds), rights (people's rights requests), users (and the dashboard allowlist), profile,
own_data (a user's own account data: see, download, correct, erase; an owner's for any user),
settings (the organisation's return address and time zone), shipping (the daily print run); what they share is
in ``shared``. Sign-in, enrolment and invitations are in app/dashboard/auth.py.
"""

from app.dashboard.pages import (  # noqa: F401  (importing a module registers its views on the blueprint)
    accounts,
    audit,
    carriers,
    clients,
    connect_ebay,
    connect_shopify,
    connect_tiktok,
    connect_walmart,
    orders,
    overview,
    own_data,
    profile,
    retention,
    rights,
    rights_requests,
    settings,
    shipping,
    users,
)
