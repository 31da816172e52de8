"""The seller's own people in the dashboard (app/dashboard/pages/own_data.py): "My data" for the signed-in
user and an owner's per-user "Data" page: see, download as JSON, correct name and e-mail, erase; all behind a
fresh second factor, the per-user page owner-only, and the audit chain naming users by id only."""

from __future__ import annotations

import html
import json
import uuid

from flask.testing import FlaskClient
from sqlalchemy import select

from tests.support.dashboard import Authenticator, Seller, post, unique_email
from vault.models import AuditEvent, User
from vault.tenants import create_tenant


def _signed_in(seller: Seller, role: str) -> tuple[User, Authenticator, FlaskClient]:
    user, auth = seller.user(role)
    assert auth is not None
    client: FlaskClient = seller.app.test_client()
    seller.login(client, user, auth)
    return user, auth, client


def _stored(seller: Seller, user_id: int) -> User:
    with seller.session() as s:
        user = s.get(User, user_id)
        assert user is not None
        s.expunge(user)
    return user


def _events(seller: Seller, *actions: str) -> list[AuditEvent]:
    with seller.session() as s:
        query = select(AuditEvent).where(AuditEvent.tenant_id == seller.tenant.id).order_by(AuditEvent.id)
        return [e for e in s.scalars(query) if not actions or e.action in actions]


def test_a_user_sees_downloads_and_corrects_their_own_data(seller: Seller) -> None:
    user, _, client = _signed_in(seller, "operator")
    assert 'href="/profile/data"' in client.get("/profile").get_data(as_text=True)
    page = client.get("/profile/data")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert user.email in text and "/profile/data/export.json" in text and 'name="confirm"' in text

    resp = client.get("/profile/data/export.json")
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    assert "attachment" in resp.headers["Content-Disposition"] and resp.headers["Cache-Control"] == "no-store"
    export = json.loads(resp.data)
    assert export["format"] == "labelvault-user-export/1"
    assert export["user"]["email"] == user.email and export["user"]["role"] == "operator"

    new_email = unique_email("mei.lin")
    resp = post(client, "/profile/data/correct", {"display_name": "Lin Mei 林美", "email": new_email.upper()})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/profile/data")
    stored = _stored(seller, user.id)
    assert (stored.display_name, stored.email) == ("Lin Mei 林美", new_email)
    assert "Corrected" in client.get("/profile/data").get_data(as_text=True)
    assert [(e.details or {}).get("fields") for e in _events(seller, "user.data.correct")] == [
        ["email", "display_name"]
    ]


def test_a_taken_or_invalid_address_is_a_clear_error_and_changes_nothing(seller: Seller) -> None:
    other, _ = seller.user("viewer")
    user, _, client = _signed_in(seller, "operator")
    resp = post(client, "/profile/data/correct", {"display_name": "Someone Else", "email": other.email})
    assert resp.status_code == 400
    page = resp.get_data(as_text=True)
    assert "A user with that e-mail address exists already." in page
    assert page.count(other.email) == 1  # only in the form field given back, never in the message
    resp = post(client, "/profile/data/correct", {"display_name": "Someone Else", "email": "not-an-address"})
    assert resp.status_code == 400 and "That is not an e-mail address." in resp.get_data(as_text=True)
    stored = _stored(seller, user.id)
    assert (stored.email, stored.display_name) == (user.email, user.display_name)
    assert _events(seller, "user.data.correct") == []


def test_every_step_needs_a_fresh_second_factor(seller: Seller) -> None:
    user, auth, client = _signed_in(seller, "owner")
    colleague, _ = seller.user("operator")
    seller.clock.advance(6 * 60)  # the sign-in's second factor is no longer fresh
    for path in ("/profile/data", "/profile/data/export.json", f"/users/{colleague.id}/data"):
        resp = client.get(path)
        assert resp.status_code == 302 and "/reauth?next=" in resp.headers["Location"], path
    posts = {
        "/profile/data/correct": "/profile/data",
        "/profile/data/erase": "/profile/data",
        f"/users/{colleague.id}/data/correct": f"/users/{colleague.id}/data",
        f"/users/{colleague.id}/data/erase": f"/users/{colleague.id}/data",
    }
    for path, back in posts.items():
        resp = post(client, path, {"display_name": "X", "email": unique_email(), "confirm": colleague.email})
        assert resp.status_code == 302 and "/reauth?next=" in resp.headers["Location"], path
        assert resp.headers["Location"].endswith(f"next={back}"), path
    assert (_stored(seller, colleague.id).disabled_at, _stored(seller, user.id).display_name) == (
        None,
        user.display_name,
    )
    assert _events(seller, "user.data.access", "user.data.correct", "user.data.erase") == []
    # The second factor again, and the page opens.
    resp = post(client, "/reauth?next=/profile/data", {"code": auth.code()})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/profile/data")
    assert client.get("/profile/data").status_code == 200


def test_an_owner_handles_a_departed_users_data_and_an_operator_may_not(seller: Seller) -> None:
    departed, _, departed_client = _signed_in(seller, "operator")
    owner, _, client = _signed_in(seller, "owner")
    assert f'href="/users/{departed.id}/data"' in client.get("/users").get_data(as_text=True)
    page = client.get(f"/users/{departed.id}/data")
    assert page.status_code == 200 and departed.email in page.get_data(as_text=True)
    export = json.loads(client.get(f"/users/{departed.id}/data/export.json").data)
    assert export["user"]["id"] == departed.id

    # The operator may see their own data, not a colleague's.
    assert departed_client.get(f"/users/{owner.id}/data").status_code == 403
    assert departed_client.get(f"/users/{owner.id}/data/export.json").status_code == 403
    assert post(departed_client, f"/users/{owner.id}/data/erase", {"confirm": owner.email}).status_code == 403
    assert departed_client.get("/profile/data").status_code == 200

    corrected = unique_email("left")
    resp = post(client, f"/users/{departed.id}/data/correct", {"display_name": "Left Co", "email": corrected})
    assert resp.status_code == 302
    assert post(client, f"/users/{departed.id}/data/erase", {"confirm": "wrong"}).status_code == 400
    assert _stored(seller, departed.id).disabled_at is None
    resp = post(client, f"/users/{departed.id}/data/erase", {"confirm": corrected})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/users")
    stored = _stored(seller, departed.id)
    assert stored.email == f"erased-user-{departed.id}@erased.invalid" and stored.password_hash is None
    assert stored.disabled_at is not None and stored.totp_secret is None
    assert departed_client.get("/profile").status_code == 302  # their session ended
    events = _events(seller, "user.data.erase")
    assert [(e.actor, e.details) for e in events] == [(f"user:{owner.id}", {"user": departed.id})]


def test_another_sellers_user_is_not_found(seller: Seller) -> None:
    _, _, client = _signed_in(seller, "owner")
    svc = seller.app.extensions["labelvault"]
    with svc.sessions() as s:
        other = create_tenant(s, keys=svc.keys, slug=f"other-{uuid.uuid4().hex[:8]}", name="Other", actor="test")
        s.commit()
        s.expunge(other)
    stranger, _ = Seller(seller.app, other, seller.clock).user("operator")
    assert client.get(f"/users/{stranger.id}/data").status_code == 404
    assert post(client, f"/users/{stranger.id}/data/erase", {"confirm": stranger.email}).status_code == 404
    assert _stored(seller, stranger.id).disabled_at is None


def test_erasing_oneself_signs_one_out(seller: Seller) -> None:
    user, _, client = _signed_in(seller, "operator")
    assert post(client, "/profile/data/erase", {"confirm": "someone@else.example"}).status_code == 400
    assert _stored(seller, user.id).disabled_at is None
    resp = post(client, "/profile/data/erase", {"confirm": f"  {user.email.upper()} "})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/login")
    assert "signed out" in client.get("/login").get_data(as_text=True)
    assert client.get("/profile/data").status_code == 302
    assert _stored(seller, user.id).disabled_at is not None
    # Signing in again is refused: no password any more, and the address is gone.
    resp = post(seller.app.test_client(), "/login", {"email": user.email, "password": "anything at all"})
    assert resp.status_code in (200, 400, 401) and "/login/code" not in resp.headers.get("Location", "")


def test_the_last_owner_cant_erase_themself(seller: Seller) -> None:
    owner, _, client = _signed_in(seller, "owner")
    resp = post(client, "/profile/data/erase", {"confirm": owner.email})
    assert resp.status_code == 400
    assert "The last owner can't be erased: make another owner first." in html.unescape(resp.get_data(as_text=True))
    resp = post(client, f"/users/{owner.id}/data/erase", {"confirm": owner.email})
    assert resp.status_code == 400
    assert _stored(seller, owner.id).disabled_at is None
    assert client.get("/profile/data").status_code == 200  # still signed in


def test_the_audit_chain_never_holds_a_name_or_address(seller: Seller) -> None:
    clerk, _, clerk_client = _signed_in(seller, "operator")
    owner, _, client = _signed_in(seller, "owner")
    names: set[str] = {clerk.email, clerk.display_name, owner.email, owner.display_name}
    clerk_client.get("/profile/data")
    clerk_client.get("/profile/data/export.json")
    new_email = unique_email("mei.lin")
    post(clerk_client, "/profile/data/correct", {"display_name": "Mei Lin Clerk", "email": new_email})
    names |= {new_email, "Mei Lin Clerk"}
    client.get(f"/users/{clerk.id}/data")
    post(client, f"/users/{clerk.id}/data/correct", {"display_name": "Departed Clerk", "email": new_email})
    names |= {"Departed Clerk"}
    assert post(client, f"/users/{clerk.id}/data/erase", {"confirm": new_email}).status_code == 302
    events = _events(seller)
    actions = [e.action for e in events if e.action.startswith("user.data.")]
    assert actions.count("user.data.erase") == 1 and "user.data.correct" in actions and "user.data.access" in actions
    blob = json.dumps([[e.actor, e.action, e.details, e.purpose] for e in events], ensure_ascii=False).lower()
    for value in names:
        assert value.lower() not in blob
        assert value.split("@")[0].lower() not in blob
    assert "@" not in blob
