"""The renderers are a library of their own: importing and running them loads neither flask nor SQLAlchemy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Run in a fresh interpreter: this test process has imported flask long ago (other tests, conftest).
PROBE = """
import importlib, json, pkgutil, sys
from datetime import UTC, datetime

import render
from render.interfaces import LabelDocument
from vault.records import LabelRecord

modules = sorted(m.name for m in pkgutil.walk_packages(render.__path__, "render."))
for name in modules:
    importlib.import_module(name)
ship_to = LabelRecord(name="Ada Lovelace", address_line1="1 Main St", city="Springfield", country_code="US")
doc = LabelDocument(order_ref="123-4567", marketplace="amazon", ship_to=ship_to, printed_at=datetime.now(UTC))
sizes = [len(render.make_renderer(fmt).render([doc])) for fmt in ("json", "zpl")]
loaded = sorted(top for top in ("flask", "sqlalchemy") if top in sys.modules)
print(json.dumps({"modules": modules, "sizes": sizes, "loaded": loaded}))
"""


def test_importing_and_running_the_renderers_loads_neither_flask_nor_sqlalchemy() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert {"render.zpl", "render.pdf", "render.jsonlabel", "render.fonts"} <= set(result["modules"])
    assert all(size > 0 for size in result["sizes"])
    assert result["loaded"] == [], f"importing render loaded {', '.join(result['loaded'])}"
