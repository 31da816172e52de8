"""Seal + unseal of one 300-byte label record: labelvault vs. the bare-primitive floor vs. the AWS Encryption SDK.

Per record, all in one process on the same bytes:

- floor: the same two-level envelope with bare ``cryptography`` calls: fresh data key, wrap it under a
  tenant key, encrypt, unwrap, decrypt — no objects, no encoding, no database;
- ours: ``KeyManager.seal`` / ``KeyManager.open`` with the real label AAD context (built per record from
  the order's identity) and the envelope encoding; tenant key from the cache, as in steady state;
- esdk: ``aws_encryption_sdk`` encrypt/decrypt with a raw AES keyring (MPL), and with the SDK's
  caching crypto materials manager (raw AES master key + local cache).

Also counts root-key (KMS) calls for sealing 10,000 records of one tenant with AWS KMS (moto's server
mode, real HTTP), plus one cold process opening them all.

``RESULT crypto vs_floor=X vs_esdk=Y vs_esdk_cached=Z kms_calls_per_10k=N``: vs_floor = our time over the
floor's, fastest run over fastest run, as timeit advises (lower is better, target ≤ 1.5; the median of each
round's own ratio is printed above it, for the spread on a busy machine);
vs_esdk / vs_esdk_cached = the SDK's time over ours (target ≥ 100).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from connectors.samples import sample_label
from vault.keyproviders import LocalKeyProvider
from vault.keys import KeyManager
from vault.labels import label_context

#: A Seattle business buyer: about 300 bytes of label record, the size of a typical one.
RECORD = sample_label(1234, "US")


def plaintext_300() -> bytes:
    data = RECORD.to_bytes()
    assert 280 <= len(data) <= 320, len(data)
    return data


def best_per_op(fn: Callable[[int], None], n: int, repeats: int) -> float:
    """Seconds per record: the fastest of ``repeats`` runs of ``n`` records (after a warm-up run)."""
    return min(interleaved({"x": fn}, n, repeats)["x"])


def interleaved(fns: dict[str, Callable[[int], None]], n: int, repeats: int) -> dict[str, list[float]]:
    """Seconds per record of each function in each of ``repeats`` rounds; within a round the functions run
    back to back, so a change of the machine's speed hits them alike (see :func:`paired_ratio`)."""
    for fn in fns.values():
        fn(max(1, n // 10))
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn(n)
            times[name].append((time.perf_counter() - t0) / n)
    for name, ts in times.items():
        print(f"  {name}: min {min(ts) * 1e6:.2f} us, median {statistics.median(ts) * 1e6:.2f} us over {repeats} runs")
    return times


def paired_ratio(ours: list[float], base: list[float]) -> float:
    """The median over rounds of ours / base within the round (both ran back to back)."""
    return statistics.median(o / b for o, b in zip(ours, base, strict=True))


def floor_cycle(plaintext: bytes) -> Callable[[int], None]:
    tenant = AESGCM(AESGCM.generate_key(256))
    urandom = os.urandom

    def run(n: int) -> None:
        for _ in range(n):
            dk = urandom(32)
            wn, rn = urandom(12), urandom(12)
            wrapped = tenant.encrypt(wn, dk, None)
            ct = AESGCM(dk).encrypt(rn, plaintext, None)
            dk2 = tenant.decrypt(wn, wrapped, None)
            if AESGCM(dk2).decrypt(rn, ct, None) is None:
                raise AssertionError

    return run


def ours_cycle(plaintext: bytes, keys: KeyManager, tenant_id: int) -> Callable[[int], None]:
    session = None  # steady state: the active version and the tenant key come from the cache
    seal, open_ = keys.seal, keys.open
    orders = [
        SimpleNamespace(
            tenant_id=tenant_id, account_id=7, marketplace="amazon", external_order_id=f"114-{i:07d}-0000001"
        )
        for i in range(1000)
    ]

    def run(n: int) -> None:
        for i in range(n):
            # the real AAD context of an order's label, built per record as seal_label/unseal_label do
            ctx = label_context(orders[i % 1000], record_version=1)  # type: ignore[arg-type]
            sealed, _ = seal(session, tenant_id, ctx, plaintext)  # type: ignore[arg-type]
            if open_(session, tenant_id, ctx, sealed) != plaintext:  # type: ignore[arg-type]
                raise AssertionError

    return run


def esdk_keyring_cycle(plaintext: bytes) -> Callable[[int], None]:
    import aws_encryption_sdk
    from aws_cryptographic_material_providers.mpl import AwsCryptographicMaterialProviders
    from aws_cryptographic_material_providers.mpl.config import MaterialProvidersConfig
    from aws_cryptographic_material_providers.mpl.models import AesWrappingAlg, CreateRawAesKeyringInput

    mpl = AwsCryptographicMaterialProviders(config=MaterialProvidersConfig())
    keyring = mpl.create_raw_aes_keyring(
        input=CreateRawAesKeyringInput(
            key_namespace="labelvault-bench",
            key_name="tenant-1",
            wrapping_key=AESGCM.generate_key(256),
            wrapping_alg=AesWrappingAlg.ALG_AES256_GCM_IV12_TAG16,
        )
    )
    client = aws_encryption_sdk.EncryptionSDKClient()

    def run(n: int) -> None:
        for i in range(n):
            ctx = {"order": f"114-{i:07d}-0000001"}
            ct, _ = client.encrypt(source=plaintext, keyring=keyring, encryption_context=ctx)
            pt, _ = client.decrypt(source=ct, keyring=keyring)
            if pt != plaintext:
                raise AssertionError

    return run


def esdk_cached_cycle(plaintext: bytes) -> Callable[[int], None]:
    import aws_encryption_sdk
    from aws_encryption_sdk.identifiers import EncryptionKeyType, WrappingAlgorithm
    from aws_encryption_sdk.internal.crypto.wrapping_keys import WrappingKey
    from aws_encryption_sdk.key_providers.raw import RawMasterKeyProvider

    wrapping = WrappingKey(
        wrapping_algorithm=WrappingAlgorithm.AES_256_GCM_IV12_TAG16_NO_PADDING,
        wrapping_key=AESGCM.generate_key(256),
        wrapping_key_type=EncryptionKeyType.SYMMETRIC,
    )

    class Provider(RawMasterKeyProvider):  # type: ignore[misc]
        provider_id = "labelvault-bench"

        def _get_raw_key(self, key_id: bytes) -> WrappingKey:
            return wrapping

    provider = Provider()
    provider.add_master_key(b"tenant-1")
    cmm = aws_encryption_sdk.CachingCryptoMaterialsManager(
        master_key_provider=provider,
        cache=aws_encryption_sdk.LocalCryptoMaterialsCache(capacity=100),
        max_age=300.0,
        max_messages_encrypted=100_000,
    )
    client = aws_encryption_sdk.EncryptionSDKClient()

    def run(n: int) -> None:
        for i in range(n):
            ctx = {"order": f"114-{i:07d}-0000001"}
            ct, _ = client.encrypt(source=plaintext, materials_manager=cmm, encryption_context=ctx)
            pt, _ = client.decrypt(source=ct, materials_manager=cmm)
            if pt != plaintext:
                raise AssertionError

    return run


def kms_calls_for(n: int) -> tuple[int, int]:
    """Root-key calls to seal ``n`` records of a new tenant through the database, and to open them cold."""
    import boto3
    from moto.server import ThreadedMotoServer

    from tests.support.servers import free_port
    from vault.db import make_engine, make_session_factory, migrate
    from vault.keyproviders import AwsKmsKeyProvider
    from vault.labels import seal_label, unseal_label
    from vault.models import MarketplaceAccount, Order
    from vault.tenants import create_tenant

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        kms = boto3.client("kms", region_name="eu-west-1", endpoint_url=endpoint)
        key_id = kms.create_key()["KeyMetadata"]["KeyId"]
        with tempfile.TemporaryDirectory() as tmp:
            engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
            migrate(engine)
            sessions = make_session_factory(engine)
            keys = KeyManager(AwsKmsKeyProvider(key_id, region="eu-west-1", endpoint_url=endpoint))
            with sessions() as s:
                tenant = create_tenant(s, keys=keys, slug="bench", name="Bench", actor="bench")
                acc = MarketplaceAccount(
                    tenant_id=tenant.id, marketplace="amazon", name="a", region="na", api_version="2026-01-01",
                    marketplace_ids=["ATVPDKIKX0DER"],
                )  # fmt: skip
                s.add(acc)
                s.flush()
                now = tenant.created_at
                for i in range(n):
                    order = Order(
                        tenant_id=tenant.id, account_id=acc.id, marketplace="amazon",
                        external_order_id=f"114-{i:07d}-0000001", status="unshipped",
                        purchased_at=now, last_updated_at=now,
                    )  # fmt: skip
                    s.add(order)
                    s.flush()
                    seal_label(s, keys=keys, order=order, label=RECORD)
                s.commit()
                seal_calls = keys.provider.call_count()
            cold = KeyManager(AwsKmsKeyProvider(key_id, region="eu-west-1", endpoint_url=endpoint))
            with sessions() as s:
                for order in s.query(Order).all():
                    assert unseal_label(s, keys=cold, order=order) == RECORD
            engine.dispose()
            return seal_calls, cold.provider.call_count()
    finally:
        server.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=10_000, help="records per timed run (floor and ours)")
    ap.add_argument("--esdk-n", type=int, default=300, help="records per timed run for the (slow) SDK")
    ap.add_argument("--repeats", type=int, default=15, help="rounds of floor then ours")
    args = ap.parse_args()
    warnings.simplefilter("ignore")  # the SDK warns about its own deprecations; not our subject here

    plaintext = plaintext_300()
    with tempfile.TemporaryDirectory() as tmp:
        keys = KeyManager(LocalKeyProvider(Path(tmp) / "keyring.json"), max_uses=10**9)
        # Prime the cache as a running process would have it: active version 1 of tenant 1.
        generated = keys.provider.generate_key(context={"bench": "1"})
        keys._remember(1, 1, generated.plaintext)
        keys._active[1] = (1, keys._clock())

        timed = interleaved(
            {"floor": floor_cycle(plaintext), "ours": ours_cycle(plaintext, keys, 1)}, args.n, args.repeats
        )
        floor, ours = min(timed["floor"]), min(timed["ours"])
        vs_floor = ours / floor
        paired = paired_ratio(timed["ours"], timed["floor"])
    esdk = best_per_op(esdk_keyring_cycle(plaintext), args.esdk_n, 3)
    esdk_cached = best_per_op(esdk_cached_cycle(plaintext), args.esdk_n, 3)
    seal_calls, cold_calls = kms_calls_for(10_000)

    print(f"record plaintext: {len(plaintext)} bytes")
    print(f"ours / floor: {vs_floor:.2f} (fastest runs), {paired:.2f} (median of the rounds' own ratios)")
    print(f"floor (bare cryptography)      {floor * 1e6:9.2f} us/record")
    print(f"labelvault seal+open           {ours * 1e6:9.2f} us/record")
    print(f"ESDK raw AES keyring           {esdk * 1e6:9.2f} us/record")
    print(f"ESDK caching CMM (raw AES)     {esdk_cached * 1e6:9.2f} us/record")
    print(f"KMS calls: sealing 10,000 records of a new tenant: {seal_calls}; a cold process opening them: {cold_calls}")
    print(
        f"RESULT crypto vs_floor={vs_floor:.2f} vs_esdk={esdk / ours:.0f} "
        f"vs_esdk_cached={esdk_cached / ours:.0f} kms_calls_per_10k={seal_calls}"
    )


if __name__ == "__main__":
    main()
