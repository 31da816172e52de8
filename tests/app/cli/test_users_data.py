"""``flask users data export|correct|erase`` end to end (own database): the new name and e-mail come from a
prompt and are never repeated, the export goes to stdout or a private file, the audit chain names ids only."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.services import services
from tests.support.servers import Database
from vault.models import AuditEvent, User
from vault.tenants import create_tenant
from vault.users import accounts

OWNER, CLERK = "boss@cli-seller.example", "mei.lin@cli-seller.example"


@pytest.fixture
def world(make_app: Any, fresh_db: Database) -> tuple[Any, Database, dict[str, int]]:
    app = make_app(fresh_db.app_url)
    with Session(fresh_db.engine, expire_on_commit=False) as s:
        tenant = create_tenant(s, keys=services(app).keys, slug="cli-own", name="CLI Seller", actor="test")
        ids = {}
        for email, role in ((OWNER, "owner"), (CLERK, "operator")):
            user = accounts.create_user(s, tenant=tenant, email=email, role=role, password="x" * 16, actor="test")
            ids[email] = user.id
        s.commit()
    return app, fresh_db, ids


def run(app: Any, *args: str, input: str | None = None) -> Result:
    result: Result = app.test_cli_runner().invoke(args=["users", "data", *args], input=input, catch_exceptions=False)
    return result


def _user(db: Database, user_id: int) -> User:
    with Session(db.engine, expire_on_commit=False) as s:
        user = s.get(User, user_id)
        assert user is not None
        return user


def test_export_correct_and_erase_from_the_command_line(world: Any, tmp_path: Path) -> None:
    app, db, ids = world
    out = run(app, "export", CLERK, "--by", CLERK)
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["user"]["email"] == CLERK

    path = tmp_path / "clerk.json"
    done = run(app, "export", CLERK, "--by", OWNER, "--out", str(path))
    assert done.exit_code == 0 and CLERK not in done.output
    assert json.loads(path.read_text())["user"]["id"] == ids[CLERK]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600

    done = run(app, "correct", CLERK, "--by", CLERK, input="Lin Mei\nlin.mei@cli-seller.example\n")
    assert done.exit_code == 0, done.output
    assert done.output.splitlines()[-1] == f"user {ids[CLERK]}: corrected email, display_name"  # no value
    clerk = _user(db, ids[CLERK])
    assert (clerk.display_name, clerk.email) == ("Lin Mei", "lin.mei@cli-seller.example")
    same = run(app, "correct", str(ids[CLERK]), "--by", OWNER, input="\n\n")
    assert same.exit_code == 0 and same.output.strip().endswith("nothing changed")

    done = run(app, "erase", "lin.mei@cli-seller.example", "--by", OWNER, "--yes")
    assert done.exit_code == 0, done.output
    clerk = _user(db, ids[CLERK])
    assert clerk.email == f"erased-user-{clerk.id}@erased.invalid" and clerk.disabled_at is not None
    with Session(db.engine) as s:
        events = s.scalars(select(AuditEvent).where(AuditEvent.action.like("user.data.%"))).all()
    assert [e.action for e in events] == ["user.data.access"] * 2 + ["user.data.correct", "user.data.erase"]
    blob = json.dumps([[e.actor, e.details] for e in events]).lower()
    assert "@" not in blob and "mei" not in blob and "lin" not in blob
    assert events[-1].actor == f"user:{ids[OWNER]}"


def test_a_taken_address_is_refused_without_repeating_it(world: Any) -> None:
    app, db, ids = world
    done = run(app, "correct", CLERK, "--by", CLERK, input=f"\n{OWNER.upper()}\n")
    assert done.exit_code == 1
    error = done.output.splitlines()[-1]
    assert error == "Error: a user with that e-mail address exists already" and "boss" not in error.lower()
    bad = run(app, "correct", CLERK, "--by", CLERK, input="\nnot an address\n")
    assert bad.exit_code == 1 and bad.output.splitlines()[-1] == "Error: that is not an e-mail address"
    assert _user(db, ids[CLERK]).email == CLERK


def test_only_the_user_or_an_owner_and_never_the_last_owner(world: Any) -> None:
    app, db, ids = world
    refused = run(app, "erase", OWNER, "--by", CLERK, "--yes")
    assert refused.exit_code == 1 and "only the user themself or an owner" in refused.output
    last = run(app, "erase", OWNER, "--by", OWNER, "--yes")
    assert last.exit_code == 1 and "the last owner can't be erased" in last.output
    kept = run(app, "erase", CLERK, "--by", OWNER, input="n\n")
    assert kept.exit_code == 1 and _user(db, ids[CLERK]).disabled_at is None
    unknown = run(app, "export", "nobody@cli-seller.example", "--by", OWNER)
    assert unknown.exit_code == 1 and "no user with that e-mail address" in unknown.output
