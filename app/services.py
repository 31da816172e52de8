"""The app's long-lived collaborators (engine, sessions, key manager), built once per app from settings."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from flask import Flask, current_app, g
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.settings import Settings
from connectors.carriers.pool import CarrierPool
from connectors.carriers.registry import carrier_factory
from connectors.ratelimit import RedisBuckets
from vault.db import make_engine, make_session_factory
from vault.keyproviders import make_key_provider
from vault.keys import KeyManager


@dataclass
class Services:
    """Shared by every request, CLI command and worker of one process."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    _keys: KeyManager | None = field(default=None, repr=False)
    _buckets: RedisBuckets | None = field(default=None, repr=False)
    _carriers: CarrierPool | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> Services:
        sized = (
            {}
            if settings.database_url.startswith("sqlite")
            else {
                "pool_size": settings.database_pool_size,
                "max_overflow": settings.database_max_overflow,
            }
        )
        engine = make_engine(settings.database_url, **sized)
        return cls(settings=settings, engine=engine, sessions=make_session_factory(engine))

    @property
    def keys(self) -> KeyManager:
        """The key manager; built on first use (creating the local keyring file if there is none)."""
        if self._keys is None:
            with self._lock:
                if self._keys is None:
                    s = self.settings
                    provider = make_key_provider(
                        s.key_provider,
                        keyring_path=s.keyring_path,
                        kms_key_id=s.kms_key_id,
                        kms_region=s.kms_region,
                        kms_endpoint_url=s.kms_endpoint_url,
                    )
                    self._keys = KeyManager(provider, max_age=s.key_cache_max_age, max_uses=s.key_cache_max_uses)
        return self._keys

    @property
    def rate_buckets(self) -> RedisBuckets | None:
        """The rate-limit buckets every process of the fleet shares (in ``LABELVAULT_REDIS_URL``), for limits
        that are the application's rather than one seller's; None without Redis (buckets per process)."""
        if self._buckets is None and self.settings.redis_url:
            with self._lock:
                if self._buckets is None:
                    self._buckets = RedisBuckets.from_url(self.settings.redis_url)
        return self._buckets

    @property
    def carriers(self) -> CarrierPool:
        """The process's carrier clients, one per carrier account (connectors/carriers/pool.py), each account's
        endpoint checked against the carrier's hosts and the operator's overrides when its client is built."""
        if self._carriers is None:
            with self._lock:
                if self._carriers is None:
                    self._carriers = CarrierPool(carrier_factory(self.settings.endpoint_overrides))
        return self._carriers


def services(app: Flask | None = None) -> Services:
    """The current app's services."""
    svc: Services = (app or current_app).extensions["labelvault"]
    return svc


def db_session() -> Session:
    """The request's (or CLI command's) database session, closed at teardown."""
    if "db_session" not in g:
        g.db_session = services().sessions()
    session: Session = g.db_session
    return session


def close_session(_exc: BaseException | None = None) -> None:
    """At the end of the app context (``create_app`` declares it): close the request's session, if it has one."""
    session = g.pop("db_session", None)
    if session is not None:
        session.close()


def init_app(app: Flask, settings: Settings) -> None:
    """The app's services, from the settings."""
    app.extensions["labelvault"] = Services.from_settings(settings)
