"""Amazon's marketplaces by SP-API marketplace id: the region whose hosts serve each, its country and name.

An account is connected per SP-API region (one LWA authorisation per region), so every marketplace id it
syncs must belong to that region: Amazon answers a foreign id with an error on every search, which would
surface only at the first sync. The table is Amazon's public list ("Marketplace IDs" in the SP-API docs).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Marketplace:
    """One Amazon marketplace: its id, the SP-API region serving it, its country (ISO 3166-1) and name."""

    marketplace_id: str
    region: str
    country_code: str
    name: str

    @property
    def label(self) -> str:
        """How the CLI and the dashboard name it: ``Amazon.co.jp (JP, A1VC38T7YXB528)``."""
        return f"{self.name} ({self.country_code}, {self.marketplace_id})"


MARKETPLACES: dict[str, Marketplace] = {
    m.marketplace_id: m
    for m in (
        Marketplace("A2EUQ1WTGCTBG2", "na", "CA", "Amazon.ca"),
        Marketplace("ATVPDKIKX0DER", "na", "US", "Amazon.com"),
        Marketplace("A1AM78C64UM0Y8", "na", "MX", "Amazon.com.mx"),
        Marketplace("A2Q3Y263D00KWC", "na", "BR", "Amazon.com.br"),
        Marketplace("A28R8C7NBKEWEA", "eu", "IE", "Amazon.ie"),
        Marketplace("A1RKKUPIHCS9HS", "eu", "ES", "Amazon.es"),
        Marketplace("A1F83G8C2ARO7P", "eu", "GB", "Amazon.co.uk"),
        Marketplace("A13V1IB3VIYZZH", "eu", "FR", "Amazon.fr"),
        Marketplace("AMEN7PMS3EDWL", "eu", "BE", "Amazon.com.be"),
        Marketplace("A1805IZSGTT6HS", "eu", "NL", "Amazon.nl"),
        Marketplace("A1PA6795UKMFR9", "eu", "DE", "Amazon.de"),
        Marketplace("APJ6JRA9NG5V4", "eu", "IT", "Amazon.it"),
        Marketplace("A2NODRKZP88ZB9", "eu", "SE", "Amazon.se"),
        Marketplace("AE08WJ6YKNBMC", "eu", "ZA", "Amazon.co.za"),
        Marketplace("A1C3SOZRARQ6R3", "eu", "PL", "Amazon.pl"),
        Marketplace("ARBP9OOSHTCHU", "eu", "EG", "Amazon.eg"),
        Marketplace("A33AVAJ2PDY3EV", "eu", "TR", "Amazon.com.tr"),
        Marketplace("A17E79C6D8DWNP", "eu", "SA", "Amazon.sa"),
        Marketplace("A2VIGQ35RCS4UG", "eu", "AE", "Amazon.ae"),
        Marketplace("A21TJRUUN4KGV", "eu", "IN", "Amazon.in"),
        Marketplace("A19VAU5U5O7RUS", "fe", "SG", "Amazon.sg"),
        Marketplace("A39IBJ37TRP1C6", "fe", "AU", "Amazon.com.au"),
        Marketplace("A1VC38T7YXB528", "fe", "JP", "Amazon.co.jp"),
    )
}


def in_region(region: str) -> list[Marketplace]:
    """The marketplaces a region's hosts serve, in the table's order."""
    return [m for m in MARKETPLACES.values() if m.region == region]


def label(marketplace_id: str) -> str:
    """A marketplace id by name when the table knows it, else the id itself (accounts stored before the check)."""
    known = MARKETPLACES.get(marketplace_id)
    return known.label if known else marketplace_id
