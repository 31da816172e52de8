"""Key providers (one conformance suite for all), the tenant-key cache and the envelope encoding."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support.servers import MotoKms
from vault.envelope import encode_context, seal_bytes
from vault.errors import DecryptionError, KeyringError, KeyServiceUnavailable
from vault.interfaces import KeyProvider
from vault.keyproviders import LocalKeyProvider, make_key_provider
from vault.keys import KeyManager
from vault.labels import label_context


@pytest.fixture(params=["local", "aws-kms"])
def provider(request: pytest.FixtureRequest, tmp_path: Path) -> KeyProvider:
    if request.param == "local":
        return LocalKeyProvider(tmp_path / "keyring.json")
    kms: MotoKms = request.getfixturevalue("moto_kms")
    return kms.provider()


CTX = {"labelvault:tenant": "1", "labelvault:version": "1"}


def test_provider_conformance(provider: KeyProvider) -> None:
    assert isinstance(provider, KeyProvider)
    generated = provider.generate_key(context=CTX)
    assert len(generated.plaintext) == 32
    assert generated.plaintext not in generated.wrapped
    assert "plaintext" not in repr(generated) or generated.plaintext.hex() not in repr(generated)
    assert provider.unwrap(generated.wrapped, root_key_id=generated.root_key_id, context=CTX) == generated.plaintext
    wrapped, key_id = provider.wrap(b"k" * 32, context=CTX)
    assert provider.unwrap(wrapped, root_key_id=key_id, context=CTX) == b"k" * 32
    before = provider.call_count()
    provider.unwrap(wrapped, root_key_id=key_id, context=CTX)
    assert provider.call_count() == before + 1


def test_provider_refuses_other_context_and_tampering(provider: KeyProvider) -> None:
    g = provider.generate_key(context=CTX)
    with pytest.raises(DecryptionError):
        provider.unwrap(g.wrapped, root_key_id=g.root_key_id, context={**CTX, "labelvault:version": "2"})
    tampered = bytearray(g.wrapped)
    tampered[len(tampered) // 2] ^= 1
    with pytest.raises(DecryptionError):
        provider.unwrap(bytes(tampered), root_key_id=g.root_key_id, context=CTX)


def test_keyring_is_created_private_and_unsafe_permissions_refused(tmp_path: Path) -> None:
    path = tmp_path / "inst" / "keyring.json"
    LocalKeyProvider(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.chmod(0o644)
    with pytest.raises(KeyringError, match="chmod 600"):
        LocalKeyProvider(path)


def test_keyring_garbage_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    path.write_text("{not json")
    path.chmod(0o600)
    with pytest.raises(KeyringError, match="unreadable"):
        LocalKeyProvider(path)
    with pytest.raises(KeyringError, match="does not exist"):
        LocalKeyProvider(tmp_path / "missing.json", create=False)


def test_local_root_rotation_and_destruction(tmp_path: Path) -> None:
    provider = LocalKeyProvider(tmp_path / "keyring.json")
    old = provider.current_key_id()
    g = provider.generate_key(context=CTX)
    new = provider.rotate()
    assert provider.current_key_id() == new != old
    assert provider.unwrap(g.wrapped, root_key_id=old, context=CTX) == g.plaintext  # old keys still open
    with pytest.raises(KeyringError):
        provider.destroy(new)
    provider.destroy(old)
    with pytest.raises(DecryptionError):
        provider.unwrap(g.wrapped, root_key_id=old, context=CTX)
    # another process reading the file sees the same state
    assert LocalKeyProvider(tmp_path / "keyring.json").key_ids() == [new]


def test_unknown_provider_kind_is_refused(tmp_path: Path) -> None:
    with pytest.raises(KeyringError, match="unknown key provider"):
        make_key_provider("vault-9000", keyring_path=tmp_path / "k.json")


def test_kms_outage_is_a_typed_error(moto_kms: MotoKms) -> None:
    import boto3
    from botocore.config import Config

    from tests.support.servers import free_port
    from vault.keyproviders import AwsKmsKeyProvider

    dead = boto3.client(
        "kms",
        region_name="eu-west-1",
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        config=Config(connect_timeout=0.5, read_timeout=0.5, retries={"max_attempts": 1}),
    )
    provider = AwsKmsKeyProvider(moto_kms.key_id, client=dead)
    with pytest.raises(KeyServiceUnavailable) as info:
        provider.generate_key(context=CTX)
    assert "unreachable" in str(info.value)


def test_kms_refusal_is_a_typed_error(moto_kms: MotoKms) -> None:
    provider = moto_kms.provider("alias/labelvault-no-such-key")
    with pytest.raises(KeyServiceUnavailable, match="refused") as info:
        provider.generate_key(context=CTX)
    assert "NotFoundException" in str(info.value)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _primed(provider: KeyProvider, clock: FakeClock, **kw: Any) -> tuple[KeyManager, Any]:
    from sqlalchemy.orm import Session

    class Rows:
        """Stands in for the tenant_keys table: one wrapped version."""

        def __init__(self) -> None:
            self.g = provider.generate_key(
                context={"labelvault:purpose": "tenant-key", "labelvault:tenant": "1", "labelvault:version": "1"}
            )

    rows = Rows()

    class FakeSession(Session):
        def execute(self, *_a: Any, **_k: Any) -> Any:
            class R:
                def first(self_inner) -> Any:
                    class Row:
                        wrapped_key = rows.g.wrapped
                        root_key_id = rows.g.root_key_id

                    return Row()

            return R()

    return KeyManager(provider, clock=clock, **kw), FakeSession()


def test_cache_bounds_uses_and_age(tmp_path: Path) -> None:
    provider = LocalKeyProvider(tmp_path / "keyring.json")
    clock = FakeClock()
    keys, session = _primed(provider, clock, max_age=60, max_uses=3)
    calls = provider.call_count()
    for _ in range(3):
        keys.tenant_key(session, 1, 1)
    assert provider.call_count() == calls + 1  # one unwrap serves max_uses operations
    keys.tenant_key(session, 1, 1)
    assert provider.call_count() == calls + 2  # the fourth use unwraps again
    clock.now += 61
    keys.tenant_key(session, 1, 1)
    assert provider.call_count() == calls + 3  # too old: unwrapped again
    keys.invalidate()
    keys.tenant_key(session, 1, 1)
    assert provider.call_count() == calls + 4
    assert keys.stats().max_uses == 3


def test_cache_counts_every_use_as_a_hit_or_a_miss(tmp_path: Path) -> None:
    clock = FakeClock()
    keys, session = _primed(LocalKeyProvider(tmp_path / "keyring.json"), clock, max_age=60, max_uses=3)
    for _ in range(4):  # three uses of the first unwrap, then a second unwrap
        keys.tenant_key(session, 1, 1)
    assert (keys.stats().hits, keys.stats().misses, keys.stats().entries) == (2, 2, 1)
    clock.now += 61
    keys.tenant_key(session, 1, 1)  # too old: the permit it took served nothing
    assert (keys.stats().hits, keys.stats().misses) == (2, 3)
    keys.tenant_key(session, 1, 1)
    keys.invalidate()  # dropped keys' uses stay counted: the metric is a counter
    assert (keys.stats().hits, keys.stats().misses, keys.stats().entries) == (3, 3, 0)


def test_no_unwrapped_key_serves_more_than_max_uses_under_threads(tmp_path: Path) -> None:
    import sys
    import threading
    from collections import Counter

    keys, session = _primed(LocalKeyProvider(tmp_path / "keyring.json"), FakeClock(), max_uses=50)
    served: Counter[Any] = Counter()  # by key object (held, so no id is reused)
    tally = threading.Lock()
    start = threading.Barrier(8)

    def work() -> None:
        start.wait()
        for _ in range(1000):
            key = keys.tenant_key(session, 1, 1)
            with tally:
                served[key] += 1

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible, inside the hit path too
    try:
        threads = [threading.Thread(target=work) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert sum(served.values()) == 8000
    assert max(served.values()) <= 50  # the bound is exact, with no lock on a hit
    assert len(served) >= 8000 // 50


@given(
    st.lists(st.one_of(st.integers(min_value=0), st.text()), max_size=6),
    st.lists(st.one_of(st.integers(min_value=0), st.text()), max_size=6),
)
def test_context_encoding_is_injective(a: list[str | int], b: list[str | int]) -> None:
    if a != b:
        assert encode_context(*a) != encode_context(*b)


@given(
    st.integers(1, 10**9),
    st.integers(1, 10**9),
    st.text(min_size=1),
    st.text(min_size=1),
    st.integers(1, 99),
    st.integers(1, 99),
)
def test_label_context_is_the_canonical_encoding(
    tenant: int, account: int, market: str, order_id: str, schema: int, version: int
) -> None:
    from types import SimpleNamespace

    order = SimpleNamespace(tenant_id=tenant, account_id=account, marketplace=market, external_order_id=order_id)
    assert label_context(order, record_version=version, schema_version=schema) == encode_context(  # type: ignore[arg-type]
        "label", tenant, account, market, order_id, schema, version
    )


def test_forked_child_never_reuses_the_parents_randomness() -> None:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    key = AESGCM(AESGCM.generate_key(256))
    seal_bytes(key, 1, b"ctx", b"warm the pool")  # the parent's pool now holds future keys
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(r)
        os.write(w, seal_bytes(key, 1, b"ctx", b"x")[5:21])
        os._exit(0)
    os.close(w)
    child_key_id = os.read(r, 16)
    os.close(r)
    os.waitpid(pid, 0)
    parent_key_id = seal_bytes(key, 1, b"ctx", b"x")[5:21]
    assert len(child_key_id) == 16 and child_key_id != parent_key_id


def test_another_process_sees_a_rotated_keyring(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    worker, operator = LocalKeyProvider(path), LocalKeyProvider(path)
    old = worker.current_key_id()
    new = operator.rotate()
    assert worker.current_key_id() == new  # no restart needed
    _wrapped, key_id = worker.wrap(b"k" * 32, context=CTX)
    assert key_id == new
    operator.destroy(old)
    assert old not in worker.key_ids() or worker.current_key_id() == new


def test_root_rewrap_ends_when_kms_is_configured_by_alias(fresh_db: Any, moto_kms: MotoKms) -> None:
    from vault.db import make_session_factory
    from vault.rotation import rewrap_root
    from vault.tenants import create_tenant

    session = make_session_factory(fresh_db.engine)()  # its own database: rewrap_root walks every tenant

    client = moto_kms.client()
    key_id = client.create_key()["KeyMetadata"]["KeyId"]
    alias = f"alias/labelvault-rotation-{key_id[:8]}"
    client.create_alias(AliasName=alias, TargetKeyId=key_id)
    keys = KeyManager(moto_kms.provider(alias))
    create_tenant(session, keys=keys, slug="alias-seller", name="Alias", actor="test")
    first = rewrap_root(session, keys=keys)
    assert rewrap_root(session, keys=keys) == 0  # wrapped under the key's ARN already: nothing left to do
    assert first in (0, 1)
    session.close()
