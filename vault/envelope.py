"""The envelope format: a record sealed under a fresh data key, the data key wrapped under a tenant key.

Layout of a version-1 envelope (all in one binary column)::

    offset  0  format (1 byte, = 1)
            1  tenant key version (4, big-endian)
            5  data key id (16, random)
           21  wrap nonce (12)
           33  wrapped data key (32 + 16-byte tag)
           81  record nonce (12)
           93  record ciphertext + 16-byte tag

Two AES-256-GCM operations; both AADs end with the caller's *context* (for a label: tenant, account,
marketplace, order id, schema version, record version — see :func:`encode_context`):

- the data key is wrapped under the tenant key with AAD ``envelope[0:21] | context`` (format, tenant key
  version, data key id), so a wrapped key only opens under its own tenant key version and on its own row;
- the record is encrypted under the data key with AAD ``data key id | context`` (the format needs no
  second binding: the data key only unwraps with ``envelope[0:21]`` as AAD). The tenant key version is
  deliberately *not* in the record's AAD: rotation rewraps the 48-byte data key and leaves the
  record ciphertext untouched, while the data key id still ties the two halves together.

Any failure to open is the same opaque :class:`~vault.errors.DecryptionError`. The code below is the
label hot path: it slices fixed offsets instead of using struct, on purpose.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vault.errors import DecryptionError

FORMAT_V1 = 1
_FORMAT_BYTE = b"\x01"
HEADER_SIZE = 93
MIN_SIZE = HEADER_SIZE + 16
_urandom = os.urandom
_PER_RECORD = 72  # data key 32 + data key id 16 + two nonces 12 + 12
_POOL_SIZE = _PER_RECORD * 56  # ~4 KiB per os.urandom call


class _RandomPool(threading.local):
    """Per-thread buffer of kernel randomness: one getrandom() syscall per 56 records instead of per record.

    The bytes are the kernel CSPRNG's, used once each and in order; the buffer is per thread (no two
    threads can take the same bytes) and emptied in a forked child (os.register_at_fork), so a worker
    forked by gunicorn never reuses its parent's future keys or nonces. ``state`` is ``[buffer, position]``:
    one thread-local lookup per record, the rest list indexing.
    """

    def __init__(self) -> None:
        self.state: list[Any] = [b"", 0]


_pool = _RandomPool()


def _reset_pool_after_fork() -> None:
    _pool.state = [b"", 0]


os.register_at_fork(after_in_child=_reset_pool_after_fork)


def encode_context(*parts: str | int) -> bytes:
    """Canonical, unambiguous encoding of the context fields bound into a record's AAD.

    Integers are written in decimal; strings as ``<length>:<text>`` (length in characters), so no value
    can imitate a field boundary; fields are joined with ``|`` and the whole is UTF-8.
    """
    return "|".join([str(p) if isinstance(p, int) else f"{len(p)}:{p}" for p in parts]).encode()


def _head_prefix(version: int) -> bytes:
    """``format | tenant key version`` (cached: a tenant has a handful of versions)."""
    prefix = _PREFIXES.get(version)
    if prefix is None:
        prefix = _PREFIXES[version] = _FORMAT_BYTE + version.to_bytes(4, "big")
    return prefix


_PREFIXES: dict[int, bytes] = {}


def seal_bytes(tenant_key: AESGCM, version: int, context: bytes, plaintext: bytes) -> bytes:
    """Encrypt ``plaintext`` under a fresh data key wrapped by ``tenant_key``; returns the envelope."""
    state = _pool.state  # the per-thread randomness, inlined: this is the hot path
    rnd, i = state
    if i + _PER_RECORD > len(rnd):
        rnd = state[0] = _urandom(_POOL_SIZE)
        i = 0
    state[1] = i + _PER_RECORD
    data_key, key_id, wrap_nonce, nonce = (
        rnd[i : i + 32],
        rnd[i + 32 : i + 48],
        rnd[i + 48 : i + 60],
        rnd[i + 60 : i + 72],
    )
    head = (_PREFIXES.get(version) or _head_prefix(version)) + key_id
    wrapped = tenant_key.encrypt(wrap_nonce, data_key, head + context)
    ciphertext = AESGCM(data_key).encrypt(nonce, plaintext, key_id + context)
    return b"".join((head, wrap_nonce, wrapped, nonce, ciphertext))


def envelope_key_version(envelope: bytes) -> int:
    """The tenant key version that wraps this envelope's data key (:class:`DecryptionError` if malformed)."""
    if len(envelope) < MIN_SIZE or envelope[0] != FORMAT_V1:
        raise DecryptionError()
    return int.from_bytes(envelope[1:5], "big")


def open_bytes(tenant_key: AESGCM, context: bytes, envelope: bytes) -> bytes:
    """Decrypt an envelope made by :func:`seal_bytes` with the same context, under its tenant key version
    (see :func:`envelope_key_version`)."""
    if len(envelope) < MIN_SIZE or envelope[0] != FORMAT_V1:
        raise DecryptionError()
    return open_checked(tenant_key, context, envelope)


def open_checked(tenant_key: AESGCM, context: bytes, envelope: bytes) -> bytes:
    """:func:`open_bytes` for a caller that has already checked the envelope's size and format byte."""
    try:
        data_key = tenant_key.decrypt(envelope[21:33], envelope[33:81], envelope[:21] + context)
        return AESGCM(data_key).decrypt(envelope[81:93], envelope[93:], envelope[5:21] + context)
    except InvalidTag:
        raise DecryptionError() from None


def rewrap_bytes(old_key: AESGCM, new_key: AESGCM, new_version: int, context: bytes, envelope: bytes) -> bytes:
    """Re-wrap the envelope's data key under another tenant key version; the record ciphertext is kept."""
    if len(envelope) < MIN_SIZE or envelope[0] != FORMAT_V1:
        raise DecryptionError()
    try:
        data_key = old_key.decrypt(envelope[21:33], envelope[33:81], envelope[:21] + context)
    except InvalidTag:
        raise DecryptionError() from None
    head = _head_prefix(new_version) + envelope[5:21]
    wrap_nonce = _urandom(12)
    wrapped = new_key.encrypt(wrap_nonce, data_key, head + context)
    return b"".join((head, wrap_nonce, wrapped, envelope[81:]))
