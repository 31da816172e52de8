"""Signing in: password then TOTP, enrolment, recovery codes, lockout, sessions, invitations, fresh second factor."""

from __future__ import annotations

import re

import pyotp
from flask.testing import FlaskClient

from tests.support.dashboard import PASSWORD, Authenticator, Seller, csrf_of, post, unique_email, wrong_code
from vault.users import second_factor


def test_owner_made_on_the_cli_enrols_then_signs_in(seller: Seller, client: FlaskClient) -> None:
    runner = seller.app.test_cli_runner()
    email = unique_email("owner")
    result = runner.invoke(
        args=["users", "create", "--tenant", seller.tenant.slug, "--email", email, "--name", "Aiko"],
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output

    assert client.get("/").headers["Location"].startswith("/login")
    resp = post(client, "/login", {"email": email, "password": PASSWORD})
    assert resp.headers["Location"] == "/enrol"
    page = client.get("/enrol").get_data(as_text=True)
    assert "<svg" in page and 'class="qr"' in page
    secret = re.search(r'data-testid="totp-secret">([A-Z2-7 ]+)<', page)[1].replace(" ", "")  # type: ignore[index]
    assert client.get("/enrol").get_data(as_text=True).count(secret[:4]) >= 1  # a reload shows the same secret
    auth = Authenticator(secret, seller.clock)

    resp = post(client, "/enrol", {"code": wrong_code(secret, seller.clock())})
    assert "not right" in resp.get_data(as_text=True)
    resp = post(client, "/enrol", {"code": auth.code()})
    page = resp.get_data(as_text=True)
    codes = re.findall(r"<code>([a-z0-9]{4}-[a-z0-9]{4}-[a-z0-9]{4}-[a-z0-9]{4})</code>", page)
    assert len(codes) == 10
    overview = client.get("/")
    assert overview.status_code == 200 and "Sakura Trading" in overview.get_data(as_text=True)


def test_a_wrong_password_says_nothing_about_the_account(seller: Seller, client: FlaskClient) -> None:
    user, _ = seller.user()
    for email in (user.email, "nobody@seller.example"):
        page = post(client, "/login", {"email": email, "password": "not the password"}).get_data(as_text=True)
        assert "Sign-in failed. Check the e-mail address and password." in page
        assert email not in page.replace(f'value="{email}"', "")  # only echoed back in the field


def test_repeated_failures_lock_the_account(seller: Seller, client: FlaskClient) -> None:
    user, auth = seller.user()
    assert auth is not None
    for _ in range(4):
        post(client, "/login", {"email": user.email, "password": "not the password"})
    page = post(client, "/login", {"email": user.email, "password": "not the password"}).get_data(as_text=True)
    assert "locked until" in page
    page = post(client, "/login", {"email": user.email, "password": PASSWORD}).get_data(as_text=True)
    assert "locked until" in page  # the right password does not help now
    assert seller.app.test_cli_runner().invoke(args=["users", "unlock", user.email]).exit_code == 0
    seller.login(client, user, auth)
    assert client.get("/").status_code == 200


def test_wrong_codes_count_towards_the_lockout(seller: Seller, client: FlaskClient) -> None:
    user, auth = seller.user()
    assert auth is not None
    post(client, "/login", {"email": user.email, "password": PASSWORD})
    for _ in range(4):
        assert "not right" in post(client, "/login/code", {"code": auth.wrong_code()}).get_data(as_text=True)
    resp = post(client, "/login/code", {"code": auth.wrong_code()})
    assert resp.headers["Location"] == "/login"
    assert "locked until" in client.get("/login").get_data(as_text=True)


def test_a_recovery_code_signs_in_once(seller: Seller, client: FlaskClient) -> None:
    user, _ = seller.user(enrolled=False)
    with seller.session() as s:
        u = s.get(type(user), user.id)
        secret = second_factor.start_enrolment(s, keys=seller.keys, user=u).secret
        codes = second_factor.confirm_enrolment(
            s, keys=seller.keys, user=u, code=pyotp.TOTP(secret).at(seller.clock()), now=seller.clock()
        )
        s.commit()
    post(client, "/login", {"email": user.email, "password": PASSWORD})
    resp = post(client, "/login/code", {"code": codes[3]})
    assert resp.status_code == 302
    assert "9 left" in client.get("/").get_data(as_text=True)


def test_sign_out_ends_the_server_session(seller: Seller, client: FlaskClient) -> None:
    user, auth = seller.user()
    assert auth is not None
    seller.login(client, user, auth)
    cookie = client.get_cookie("lv_session")
    assert cookie is not None and cookie.http_only and cookie.same_site == "Lax"
    post(client, "/logout")
    other = seller.app.test_client()
    other.set_cookie(cookie.key, cookie.value)  # the old cookie, replayed
    assert other.get("/").status_code == 302


def test_an_invited_operator_sets_a_password_and_enrols(seller: Seller, client: FlaskClient) -> None:
    owner, auth = seller.user()
    assert auth is not None
    seller.login(client, owner, auth)
    email = unique_email("operator")
    page = post(client, "/users/invite", {"email": email, "role": "operator", "display_name": "Ken"}).get_data(
        as_text=True
    )
    url = re.search(r'id="invite-url">([^<]+)<', page)[1]  # type: ignore[index]
    invited = seller.app.test_client()
    path = url.split("localhost", 1)[1]
    form = invited.get(path).get_data(as_text=True)
    assert email in form
    token = csrf_of(form)
    resp = invited.post(path, data={"csrf_token": token, "password": "short", "password2": "short"})
    assert "at least 12" in resp.get_data(as_text=True)
    resp = invited.post(path, data={"csrf_token": token, "password": PASSWORD, "password2": PASSWORD})
    assert resp.headers["Location"] == "/enrol"
    assert "svg" in invited.get("/enrol").get_data(as_text=True)
    assert invited.get(path).status_code == 200 and "not valid any more" in invited.get(path).get_data(as_text=True)


def test_previews_need_a_fresh_second_factor(seller: Seller, client: FlaskClient) -> None:
    user, auth = seller.user("operator")
    assert auth is not None
    seller.login(client, user, auth)
    seller.clock.advance(6 * 60)
    resp = client.get("/rights")
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/reauth?next=/rights")
    assert "not right" in post(client, "/reauth?next=/rights", {"code": auth.wrong_code()}).get_data(as_text=True)
    resp = post(client, "/reauth?next=/rights", {"code": auth.code()})
    assert resp.headers["Location"] == "/rights"
    assert client.get("/rights").status_code == 200
    # An open redirect is not possible through ?next=.
    seller.clock.advance(6 * 60)
    resp = post(client, "/reauth?next=//evil.example/", {"code": auth.code()})
    assert resp.headers["Location"] == "/"
