"""``next=`` never leads off the site: hostile values through the real sign-in flow end on the overview.

Each value is judged as a browser would read the ``Location`` it ends in (WHATWG URL parsing drops tab,
newline and carriage return, strips leading C0 controls and spaces, and reads a backslash as a slash), so a
value that only looks like a path, such as ``/%09/evil.example``, is caught.
"""

from __future__ import annotations

import re
from urllib.parse import quote, urljoin, urlsplit

import pytest
from flask.testing import FlaskClient

from tests.support.dashboard import PASSWORD, Authenticator, Seller, post

HOSTILE = [
    "//evil.example",
    "/\t/evil.example",  # the reported case (next=/%09/evil.example): a tab between the slashes
    "/\n/evil.example",
    "/\r/evil.example",
    "\t//evil.example",
    " //evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "/\\/evil.example",
    "https://evil.example/",
    "https:evil.example",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "\x01javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "evil.example",
    "///evil.example",
    "/\x00/evil.example",
]


def browser_reading(location: str, base: str = "http://localhost/") -> tuple[str, str]:
    """(scheme, host) a browser goes to for ``location`` (its C0/tab/backslash normalisation, then urljoin)."""
    cleaned = re.sub(r"[\t\n\r]", "", location).strip("".join(map(chr, range(0x21)))).replace("\\", "/")
    parts = urlsplit(urljoin(base, cleaned))
    return parts.scheme, parts.netloc


def _signed_in_location(seller: Seller, client: FlaskClient, auth: Authenticator, email: str, query: str) -> str:
    resp = post(client, f"/login?{query}", {"email": email, "password": PASSWORD})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/login/code")
    resp = post(client, "/login/code", {"code": auth.code()})
    assert resp.status_code == 302
    return str(resp.headers["Location"])


QUERIES = [f"next={quote(v, safe='')}" for v in HOSTILE] + ["next=/%09/evil.example", "next=/%5C%5Cevil.example"]


@pytest.mark.parametrize("query", QUERIES)
def test_a_hostile_next_ends_on_the_overview(seller: Seller, client: FlaskClient, query: str) -> None:
    user, auth = seller.user()
    assert auth is not None
    location = _signed_in_location(seller, client, auth, user.email, query)
    assert browser_reading(location) == ("http", "localhost"), location
    assert location == "/"


@pytest.mark.parametrize("nxt", ["/orders", "/orders?page=2&q=a%20b", "/clients#new"])
def test_a_same_site_next_is_kept(seller: Seller, client: FlaskClient, nxt: str) -> None:
    user, auth = seller.user()
    assert auth is not None
    assert _signed_in_location(seller, client, auth, user.email, f"next={quote(nxt, safe='')}") == nxt


def test_the_recovery_codes_page_links_only_to_the_site(seller: Seller, client: FlaskClient) -> None:
    """After enrolment the way on is a link, not a redirect: the same rule holds for its href."""
    user, _ = seller.user(enrolled=False)
    resp = post(client, "/login?next=/%09/evil.example", {"email": user.email, "password": PASSWORD})
    assert resp.headers["Location"].endswith("/enrol")
    page = client.get("/enrol").get_data(as_text=True)
    secret = re.search(r'data-testid="totp-secret">([A-Z2-7 ]+)<', page)[1].replace(" ", "")  # type: ignore[index]
    page = post(client, "/enrol", {"code": Authenticator(secret, seller.clock).code()}).get_data(as_text=True)
    href = re.search(r'class="btn btn-primary btn-block" href="([^"]*)"', page)[1]  # type: ignore[index]
    # An owner whose tenant has no return address is asked for it first, and goes on to the same place.
    assert browser_reading(href) == ("http", "localhost") and href in ("/", "/welcome/return-address?next=/")


@pytest.mark.parametrize("nxt", HOSTILE, ids=repr)
def test_the_language_switch_and_reauth_keep_to_the_site(seller: Seller, client: FlaskClient, nxt: str) -> None:
    user, auth = seller.user()
    assert auth is not None
    seller.login(client, user, auth)
    resp = post(client, "/language", {"locale": "de", "next": nxt})
    assert browser_reading(resp.headers["Location"]) == ("http", "localhost")
    resp = post(client, f"/reauth?next={quote(nxt, safe='')}", {"code": auth.code()})
    assert resp.status_code == 302 and browser_reading(resp.headers["Location"]) == ("http", "localhost")
