"""What of deploy/ can be checked without Docker: the compose file, the Dockerfile, gunicorn's config, nginx's
config (``nginx -t``), the systemd units, the AWS policies and the runbook."""

from __future__ import annotations

import ipaddress
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.deploy import gunicorn_env, nginx_conf
from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
BIN = Path(sys.executable).parent
KMS_DATA_ACTIONS = {"kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return doc


def test_compose_has_the_whole_stack(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"app", "worker", "scheduler", "postgres", "redis", "nginx", "migrate"} <= set(services)
    for name in ("app", "worker", "scheduler", "migrate"):
        build = services[name]["build"]
        assert (DEPLOY / build["context"] / build["dockerfile"]).is_file()
        assert services[name]["environment"]["LABELVAULT_ENV"] == "production"
        assert services[name]["environment"]["LABELVAULT_REDIS_URL"].startswith("redis://redis:")
    assert services["app"]["command"][:3] == ["gunicorn", "-c", "deploy/gunicorn.conf.py"]
    assert (ROOT / services["app"]["command"][2]).is_file()


def test_compose_bind_mounts_exist(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name} mounts {source}, which is not in deploy/"


def test_compose_worker_commands_exist(compose: dict[str, Any]) -> None:
    from app.cli.worker import worker_cli

    for name in ("worker", "scheduler"):
        command = compose["services"][name]["command"]
        assert command[:2] == ["flask", "worker"] and command[2] in worker_cli.commands


def test_app_trusts_exactly_the_nginx_container(compose: dict[str, Any]) -> None:
    """The trusted-proxy setting names nginx's fixed address, inside the compose network."""
    nginx_ip = compose["services"]["nginx"]["networks"]["backend"]["ipv4_address"]
    trusted = compose["services"]["app"]["environment"]["LABELVAULT_TRUSTED_PROXIES"]
    assert ipaddress.ip_network(trusted) == ipaddress.ip_network(f"{nginx_ip}/32")
    subnet = compose["networks"]["backend"]["ipam"]["config"][0]["subnet"]
    assert ipaddress.ip_address(nginx_ip) in ipaddress.ip_network(subnet)
    conf = (DEPLOY / "nginx" / "nginx.conf").read_text()
    # nginx passes on one address (the client it resolved), and never the headers labelvault doesn't read.
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in conf
    assert 'proxy_set_header Forwarded "";' in conf and 'proxy_set_header X-Real-IP "";' in conf
    assert "real_ip_recursive on;" in conf and "real_ip_header X-Forwarded-For;" in conf
    assert not re.search(r"^\s*set_real_ip_from", conf, re.M), "no load balancer is trusted by default"


def test_dockerfile_copies_real_files() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    sources = [part for line in re.findall(r"^COPY\s+(.+)$", text, re.M) for part in line.split()[:-1]]
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), f"Dockerfile copies {source}, which does not exist"
    assert re.search(r"^USER\s+labelvault", text, re.M)


def test_gunicorn_config_loads(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(BIN / "gunicorn"), "--check-config", "-c", "deploy/gunicorn.conf.py"],
        cwd=ROOT,
        env=gunicorn_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_gunicorn_serves_with_json_logs_and_summed_metrics(tmp_path: Path) -> None:
    """Two workers from deploy/gunicorn.conf.py: health, request ids in JSON logs, metrics of both workers."""
    port = free_port()
    log = tmp_path / "gunicorn.log"
    env = gunicorn_env(tmp_path, GUNICORN_BIND=f"127.0.0.1:{port}", GUNICORN_WORKERS="2", LABELVAULT_LOG_FORMAT="json")
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(BIN / "gunicorn"), "-c", "deploy/gunicorn.conf.py"], cwd=ROOT, env=env, stdout=out, stderr=out
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.1)
        with httpx.Client(timeout=5) as http:
            for _ in range(20):  # new connections: both workers get some
                http.get(f"http://127.0.0.1:{port}/healthz", headers={"Connection": "close"})
            r = http.get(f"http://127.0.0.1:{port}/metrics", headers={"X-Request-ID": "deploy-test-0001"})
        assert r.status_code == 200 and r.headers["X-Request-ID"] == "deploy-test-0001"
        served = [
            float(line.split()[-1])
            for line in r.text.splitlines()
            if line.startswith('labelvault_http_requests_total{endpoint="health.liveness",status="200"}')
        ]
        assert served and served[0] >= 21  # both workers' counts, summed
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    # Each of the request's lines exactly once: the root logger writes each record through one handler only.
    logged = [d["message"] for d in lines if d.get("request_id") == "deploy-test-0001"]
    assert "GET /metrics 200" in logged and len(logged) == len(set(logged)), logged
    assert any(d.get("logger") == "gunicorn.error" for d in lines), "gunicorn's own log is JSON too"


def test_nginx_config_passes_nginx_t(tmp_path: Path) -> None:
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if nginx is None:
        pytest.skip("nginx is not installed (scripts/test-packages.txt lists it)")
    conf = nginx_conf(tmp_path)
    result = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-c", str(conf), "-e", "stderr"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def _statements(path: Path) -> list[dict[str, Any]]:
    doc = json.loads(path.read_text())
    assert doc["Version"] == "2012-10-17"
    statements: list[dict[str, Any]] = doc["Statement"]
    return statements


def _actions(statement: dict[str, Any]) -> set[str]:
    actions = statement["Action"]
    return {actions} if isinstance(actions, str) else set(actions)


def test_iam_policy_allows_exactly_encrypt_decrypt_generate_on_one_key() -> None:
    statements = _statements(DEPLOY / "aws" / "iam-policy.json")
    assert len(statements) == 1
    (statement,) = statements
    assert statement["Effect"] == "Allow" and "NotAction" not in statement and "NotResource" not in statement
    assert _actions(statement) == KMS_DATA_ACTIONS
    resource = statement["Resource"]
    assert isinstance(resource, str) and "*" not in resource  # one key, no wildcard
    assert resource == "${key_arn}"  # filled in by Terraform with the one key's ARN
    # Only calls that carry labelvault's encryption context (every call labelvault makes does).
    assert statement["Condition"]["ForAllValues:StringLike"]["kms:EncryptionContextKeys"] == "labelvault:*"


def test_key_policy_gives_the_app_only_data_use_and_admins_no_data_use() -> None:
    statements = _statements(DEPLOY / "aws" / "kms-key-policy.json")
    app = [s for s in statements if s["Principal"]["AWS"] == "${app_role_arn}"]
    assert len(app) == 1 and _actions(app[0]) == KMS_DATA_ACTIONS and app[0]["Effect"] == "Allow"
    for statement in statements:
        actions = _actions(statement)
        assert "kms:*" not in actions and not any(a.endswith("*") for a in actions)
        if statement is not app[0]:
            assert not actions & (KMS_DATA_ACTIONS | {"kms:ReEncryptFrom", "kms:ReEncryptTo"})


def test_terraform_uses_the_policy_documents() -> None:
    text = (DEPLOY / "terraform" / "main.tf").read_text()
    for name in re.findall(r'templatefile\("\$\{path\.module\}/([^"]+)"', text):
        assert (DEPLOY / "terraform" / name).resolve().is_file()
    assert "kms-key-policy.json" in text and "iam-policy.json" in text


def test_systemd_units_verify() -> None:
    units = sorted((DEPLOY / "systemd").glob("*.service"))
    assert {u.name for u in units} == {
        "labelvault-web.service",
        "labelvault-worker.service",
        "labelvault-scheduler.service",
    }
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    result = subprocess.run(
        [analyze, "verify", "--man=no", *map(str, units)], capture_output=True, text=True, timeout=60
    )
    # The units point at /srv/labelvault, which is not installed here; anything else is an error.
    problems = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if line.strip() and "is not executable: No such file or directory" not in line
    ]
    assert problems == []


def test_runbook_covers_the_operations() -> None:
    text = (DEPLOY / "README.md").read_text().lower()
    for topic in ("first start", "key rotation", "backup", "restore", "incident", "24 hours", "scaling out"):
        assert topic in text, f"deploy/README.md says nothing about {topic}"
