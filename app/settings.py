"""Configuration: environment variables prefixed ``LABELVAULT_``, parsed and validated once at start."""

from __future__ import annotations

import ipaddress
import logging
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from limits import parse_many
from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from vault.marketplace_accounts import parse_endpoint_overrides
from vault.netaddr import AddressError, parse_networks, parse_trusted_proxies
from vault.rights_requests import DEFAULT_DUE_DAYS, parse_due_days

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent


class SettingsError(Exception):
    """The configuration is invalid or unsafe; the message says which setting and why, in one line."""


class Settings(BaseSettings):
    """Every setting labelvault reads. README.md's configuration table lists the same names and defaults."""

    model_config = SettingsConfigDict(env_prefix="LABELVAULT_", frozen=True, extra="forbid")

    env: Literal["development", "production", "test"] = "development"
    debug: bool = False
    secret_key: str = Field(default="", repr=False)
    instance_path: Path = ROOT / "instance"
    database_url: str = ""  # default: SQLite file in the instance folder
    # Connections each process keeps open to PostgreSQL, and how many more it may open at a peak: a thread
    # pool worker (flask worker run --pool threads) needs one per concurrent sync.
    database_pool_size: int = Field(default=5, ge=1)
    database_max_overflow: int = Field(default=10, ge=0)

    key_provider: Literal["local", "aws-kms"] = "local"
    keyring_path: Path | None = None  # default: <instance_path>/keyring.json
    accept_local_keyring_risk: bool = False
    kms_key_id: str = ""
    kms_region: str | None = None
    kms_endpoint_url: str | None = None
    key_cache_max_age: float = Field(default=300.0, gt=0)
    key_cache_max_uses: int = Field(default=100_000, gt=0)

    redis_url: str = ""  # empty: in-memory rate-limit storage (single process only)

    # The label API. CIDR lists are comma-separated; vault/netaddr.py says what is accepted.
    global_allowlist: str = ""  # empty: loopback only outside production (production refuses to start)
    trusted_proxies: str = ""  # socket peers whose X-Forwarded-For is read, from the right; never broader than /8, /32
    trusted_proxy_hops: int = Field(default=2, ge=1, le=10)  # most trusted proxies in front of the app, peer included
    accept_broad_cidr_risk: bool = False  # global allowlist only: ranges broader than /16 or /48, /0 included
    label_reissue_cap: int = Field(default=3, ge=1)  # labels per order, first issue included
    label_idempotency_hours: float = Field(default=24.0, gt=0, le=720)  # an Idempotency-Key is remembered this long
    rate_limit_ip: str = "600/minute"  # per client IP, before authentication
    rate_limit_client: str = "1200/minute"  # per API client
    rate_limit_strategy: Literal["fixed-window", "moving-window", "sliding-window-counter"] = "fixed-window"
    rate_limit_prefix: str = "labelvault"  # key prefix in the rate-limit store (Redis shared by others)
    max_request_bytes: int = Field(default=1_048_576, ge=1024)  # larger bodies are refused (413), as nginx does
    refusal_audit_interval: int = Field(default=60, ge=1)  # seconds between audited refusals per IP and reason
    audit_export_bucket: str = ""  # S3 bucket for `flask audit export` (Object Lock enabled in production)
    audit_export_prefix: str = "audit-heads/"
    audit_export_retention_days: int = Field(default=0, ge=0)  # Object Lock retention; 0: the bucket's default
    s3_endpoint_url: str | None = None
    s3_region: str | None = None

    # The seller dashboard (app/dashboard).
    dashboard_session_hours: float = Field(default=12.0, gt=0)  # a sign-in lasts at most this long
    dashboard_idle_minutes: float = Field(default=30.0, gt=0)  # ... and this long without a request
    dashboard_reauth_minutes: float = Field(default=5.0, gt=0)  # label previews etc. need a second factor this fresh
    dashboard_max_failed_logins: int = Field(default=5, ge=1)  # per account and address (10x: everywhere)
    dashboard_lockout_minutes: float = Field(default=15.0, gt=0)
    dashboard_cookie_secure: bool | None = None  # Secure cookies; default: on in production (HTTPS)

    # Production: background work, observability and alarms (deploy/README.md lists them all).
    broker_url: str = ""  # the task queue's Redis; default: LABELVAULT_REDIS_URL (empty: embedded scheduler)
    task_visibility_timeout: int = Field(default=3600, ge=10)  # a killed worker's task is redelivered after this
    worker_tick_seconds: float = Field(default=30.0, gt=0)  # how often due syncs, purges and key epochs are looked for
    # Due syncs queued as one task per account until a tick finds more than this many due; then several
    # accounts per task, at most sync_batch_size (app/worker.py's sync_batches).
    sync_batch_spread: int = Field(default=64, ge=1)
    sync_batch_size: int = Field(default=16, ge=1)
    sync_speedup: float = Field(default=1.0, gt=0)  # the fake marketplace only: multiply Amazon's rate limits
    # Origins (comma-separated, e.g. http://127.0.0.1:8400) an account's endpoints may point at besides the
    # marketplace's own hosts: fakes and sandboxes. Empty: the marketplaces' own hosts only.
    marketplace_endpoint_overrides: str = ""
    # The public Shopify app's credentials (Partner Dashboard), for the install flow and the privacy webhooks'
    # signatures. Empty: the dashboard offers the custom-app token form only and /webhooks/shopify answers 503.
    shopify_client_id: str = ""
    shopify_client_secret: SecretStr = Field(default=SecretStr(""), repr=False)
    purge_interval_seconds: int = Field(default=3600, ge=1)
    confirm_interval_seconds: int = Field(default=60, ge=1)  # how often bought shipments are confirmed to marketplaces
    key_epoch_interval_seconds: int = Field(default=3600, ge=1)
    key_epoch_days: int = Field(default=90, ge=1)  # tenant key versions are replaced this often
    backup_retention_days: int = Field(default=35, ge=0)  # how long a backup may still need a retired root key
    log_format: Literal["auto", "json", "text"] = "auto"  # auto: JSON in production, text otherwise
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    metrics_enabled: bool = True  # /metrics, behind the global allowlist
    readiness_cache_seconds: float = Field(default=10.0, ge=0)  # a KMS readiness probe is reused this long
    alarm_window: int = Field(default=600, ge=10)  # seconds over which refusals and ineligible requests are counted
    alarm_rate_window: int = Field(default=300, ge=10)  # a client's recent label rate is measured over this
    alarm_rate_baseline: int = Field(default=86_400, ge=60)  # ... and its usual rate over this
    alarm_rate_factor: float = Field(default=5.0, gt=1)  # recent rate above usual rate × this raises an alarm
    alarm_rate_min: int = Field(default=200, ge=1)  # labels in the recent window below which no rate alarm is raised
    alarm_ineligible_threshold: int = Field(default=5, ge=1)  # per client per alarm window
    alarm_refusal_threshold: int = Field(default=30, ge=1)  # refused requests per address per alarm window
    alarm_repeat_seconds: int = Field(default=900, ge=1)  # the same alarm is raised at most once per this

    # Retention (vault/retention.py): assumed transit time when a marketplace reports no delivery date at all.
    retention_delivery_allowance_days: int = Field(default=14, ge=0, le=60)
    # Rights requests (vault/rights_requests.py): days to answer by jurisdiction, ``eu=30,us-ca=45,default=30``;
    # empty: vault.rights_requests.DEFAULT_DUE_DAYS. It needs a ``default`` rule.
    rights_due_days: str = ""

    @model_validator(mode="after")
    def _fill_defaults(self) -> Settings:
        # Defaults that depend on other settings (frozen model: set through object.__setattr__ once).
        if not self.database_url:
            object.__setattr__(self, "database_url", f"sqlite:///{self.instance_path / 'labelvault.db'}")
        if self.keyring_path is None:
            object.__setattr__(self, "keyring_path", self.instance_path / "keyring.json")
        return self

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def endpoint_overrides(self) -> frozenset[str]:
        """The origins of ``LABELVAULT_MARKETPLACE_ENDPOINT_OVERRIDES`` (validated by :meth:`problems`)."""
        return parse_endpoint_overrides(self.marketplace_endpoint_overrides)

    @property
    def due_days(self) -> dict[str, int]:
        """The due-date table of ``LABELVAULT_RIGHTS_DUE_DAYS`` (validated by :meth:`problems`)."""
        if not self.rights_due_days.strip():
            return dict(DEFAULT_DUE_DAYS)
        return parse_due_days(self.rights_due_days)

    def problems(self) -> list[str]:
        """Why this configuration must not run (empty when it may). Production is held to the strict rules."""
        out: list[str] = []
        if not self.instance_path.is_absolute():
            out.append(f"LABELVAULT_INSTANCE_PATH must be an absolute path, not {str(self.instance_path)!r}")
        elif self.keyring_path is not None and not self.keyring_path.is_absolute():
            out.append(f"LABELVAULT_KEYRING_PATH must be an absolute path, not {str(self.keyring_path)!r}")
        out += _database_url_problems(self.database_url)
        if self.key_provider == "aws-kms" and not self.kms_key_id:
            out.append("LABELVAULT_KMS_KEY_ID is required with LABELVAULT_KEY_PROVIDER=aws-kms")
        out += self._label_api_problems()
        out += self._endpoint_override_problems()
        try:
            _ = self.due_days
        except ValueError as exc:
            out.append(f"LABELVAULT_RIGHTS_DUE_DAYS: {exc} (e.g. eu=30,us-ca=45,default=30)")
        if bool(self.shopify_client_id.strip()) != bool(self.shopify_client_secret.get_secret_value().strip()):
            out.append(
                "LABELVAULT_SHOPIFY_CLIENT_ID and LABELVAULT_SHOPIFY_CLIENT_SECRET are set together or not at all"
            )
        if not self.production:
            return out
        if self.debug:
            out.append("LABELVAULT_DEBUG must be off in production (the debugger runs code and shows data)")
        if len(self.secret_key) < 32:
            out.append("LABELVAULT_SECRET_KEY must be set to at least 32 random characters in production")
        if not self.global_allowlist.strip():
            out.append("LABELVAULT_GLOBAL_ALLOWLIST must name the networks allowed to reach the service in production")
        if self.key_provider == "local" and not self.accept_local_keyring_risk:
            out.append(
                "the local keyring keeps the root key on the same disk as the data; use LABELVAULT_KEY_PROVIDER="
                "aws-kms, or set LABELVAULT_ACCEPT_LOCAL_KEYRING_RISK=1 to accept that risk"
            )
        return out

    def cautions(self) -> list[str]:
        """What an accepted configuration should know (logged at start when it has no problems)."""
        out: list[str] = []
        if self.production and self.database_url.startswith("sqlite"):
            out.append("production mode on SQLite: fine for one host, use PostgreSQL to scale out")
        if self.production and not self.redis_url:
            out.append("production mode without LABELVAULT_REDIS_URL: rate limits are per process")
        return out

    def _endpoint_override_problems(self) -> list[str]:
        """The overrides must parse, and in production be HTTPS: the credentials travel to them."""
        try:
            origins = self.endpoint_overrides
        except ValueError as exc:
            return [f"LABELVAULT_MARKETPLACE_ENDPOINT_OVERRIDES: {exc}"]
        # Plain HTTP only to this host's loopback (a local fake or proxy): elsewhere the credentials would cross a
        # network in clear.
        plain = sorted(o for o in origins if o.startswith("http://") and not _is_loopback_origin(o))
        if self.production and plain:
            return [
                "LABELVAULT_MARKETPLACE_ENDPOINT_OVERRIDES must be https in production (plain http only to loopback), "
                f"not {', '.join(plain)}"
            ]
        return []

    def _label_api_problems(self) -> list[str]:
        out: list[str] = []
        try:
            parse_networks(self.global_allowlist, allow_broad=self.accept_broad_cidr_risk)
        except AddressError as exc:
            hint = "" if self.accept_broad_cidr_risk else " (LABELVAULT_ACCEPT_BROAD_CIDR_RISK=1 accepts broad ranges)"
            out.append(f"LABELVAULT_GLOBAL_ALLOWLIST: {exc}{hint}")
        try:
            parse_trusted_proxies(self.trusted_proxies)  # its own bound: the broad-range consent doesn't apply
        except AddressError as exc:
            out.append(f"LABELVAULT_TRUSTED_PROXIES: {exc}")
        for name in ("rate_limit_ip", "rate_limit_client"):
            try:
                parse_many(getattr(self, name))
            except ValueError:
                out.append(f"LABELVAULT_{name.upper()}: not a rate limit such as '600/minute' or '10 per second'")
        return out


#: The databases labelvault runs on, by SQLAlchemy dialect, with the drivers the requirements install.
DATABASE_DRIVERS = {"sqlite": ("pysqlite",), "postgresql": ("psycopg",)}


def _database_url_problems(url: str) -> list[str]:
    """Why ``url`` names no database labelvault can use. The URL itself is never quoted: it may hold a password."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return ["LABELVAULT_DATABASE_URL is not a database URL (e.g. postgresql+psycopg://USER@HOST/DB)"]
    drivers = DATABASE_DRIVERS.get(parsed.get_backend_name())
    if drivers is None:
        return [f"LABELVAULT_DATABASE_URL: {parsed.get_backend_name()!r} is not supported (sqlite or postgresql)"]
    if parsed.get_driver_name() not in drivers:
        return [
            f"LABELVAULT_DATABASE_URL: the driver {parsed.get_driver_name()!r} is not installed "
            f"(use {parsed.get_backend_name()}+{drivers[0]}://...)"
        ]
    return []


def load_settings(overrides: dict[str, Any] | None = None) -> Settings:
    """Read the environment (plus ``overrides``, keyed by lower-case setting name) and validate it.

    Every problem is reported at once, in one line: an operator fixes them all in one go instead of
    meeting them one restart at a time. Values that fail to parse are named, never quoted (a URL or a
    key may be a secret).
    """
    overrides = dict(overrides or {})
    problems: list[str] = []
    invalid: dict[str, Any] = {}
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else ""
            problems.append(f"LABELVAULT_{field.upper()}: {error['msg']}" if field else error["msg"])
            if field in Settings.model_fields:
                invalid[field] = Settings.model_fields[field].get_default(call_default_factory=True)
        try:  # the valid settings are still checked, with the invalid ones at their defaults
            settings = Settings(**{**overrides, **invalid})
        except ValidationError:
            raise SettingsError("refusing to start: " + "; ".join(problems)) from None
    named = tuple(f"LABELVAULT_{field.upper()}" for field in invalid)
    problems += [problem for problem in settings.problems() if not problem.startswith(named)]
    if problems:
        raise SettingsError("refusing to start: " + "; ".join(problems))
    for caution in settings.cautions():
        log.warning(caution)
    return settings


def _is_loopback_origin(origin: str) -> bool:
    """Whether an origin's host is this machine's loopback (``localhost``, 127.0.0.0/8, ``::1``)."""
    host = urlsplit(origin).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
