"""Root key providers: a local keyring file (embedded default) and AWS KMS (production)."""

from __future__ import annotations

import base64
import json
import logging
import os
import secrets
import stat
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vault.errors import DecryptionError, KeyringError, KeyServiceUnavailable
from vault.interfaces import GeneratedKey, KeyProvider

log = logging.getLogger(__name__)

KEYRING_FORMAT = 1


def _context_aad(key_id: str, context: Mapping[str, str]) -> bytes:
    # Canonical and unambiguous: sorted keys, JSON-escaped, the root key id included.
    return json.dumps([key_id, sorted(context.items())], separators=(",", ":")).encode()


class _Counter:
    def __init__(self) -> None:
        self._n = 0
        self._lock = threading.Lock()

    def add(self) -> None:
        with self._lock:
            self._n += 1

    def value(self) -> int:
        return self._n


class LocalKeyProvider:
    """Root keys in a JSON keyring file (mode 0600) beside the database, e.g. ``instance/keyring.json``.

    Made for the demo and single-host installs: anyone who can read the file and the database can read
    every record, so production mode refuses it unless an explicit override names that risk. Root keys
    are versioned: :meth:`rotate` adds one and makes it current; :meth:`destroy` deletes an old one, which
    makes every tenant key wrapped under it (in the live database or any backup) unreadable for good.
    """

    name = "local"

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._calls = _Counter()
        if not self.path.exists():
            if not create:
                raise KeyringError(f"keyring file {self.path} does not exist (run `flask vault init`)")
            self._create()
        self._load()

    def _create(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        key_id = self._new_key_id()
        doc = {"format": KEYRING_FORMAT, "current": key_id, "keys": {key_id: self._new_entry()}}
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return  # another process created it first; load theirs
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        log.info("created local keyring", extra={"keyring_path": str(self.path), "root_key_id": key_id})

    @staticmethod
    def _new_key_id() -> str:
        return f"local:{datetime.now(UTC):%Y%m%d}:{secrets.token_hex(4)}"

    @staticmethod
    def _new_entry() -> dict[str, str]:
        return {
            "key": base64.b64encode(AESGCM.generate_key(256)).decode(),
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
        }

    def _refresh(self) -> None:
        # Another process (the key-epoch job, `flask vault rotate --root`) may have rotated or destroyed a
        # root key: pick the file up again when it changed, so no process wraps under a stale root.
        try:
            st = self.path.stat()
        except OSError:
            raise KeyringError(f"keyring file {self.path} has disappeared") from None
        if (st.st_mtime_ns, st.st_size, st.st_ino) != self._stamp:
            with self._lock:
                self._load()

    def _load(self) -> None:
        try:
            st = self.path.stat()
            if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise KeyringError(f"keyring file {self.path} is readable by other users; run `chmod 600 {self.path}`")
            doc = json.loads(self.path.read_text())
            if doc.get("format") != KEYRING_FORMAT:
                raise KeyringError(f"keyring file {self.path} has an unknown format")
            keys = {kid: AESGCM(base64.b64decode(e["key"])) for kid, e in doc["keys"].items()}
            current = doc["current"]
            if current not in keys:
                raise KeyringError(f"keyring file {self.path} names a current key it does not hold")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise KeyringError(f"keyring file {self.path} is unreadable ({type(exc).__name__})") from None
        self._doc: dict[str, Any] = doc
        self._keys = keys
        self._current: str = current
        self._stamp = (st.st_mtime_ns, st.st_size, st.st_ino)

    def _save(self, doc: dict[str, Any]) -> None:
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        self._load()

    def key_ids(self) -> list[str]:
        """Every root key id the keyring still holds."""
        return list(self._keys)

    def current_key_id(self) -> str:
        self._refresh()
        return self._current

    def generate_key(self, *, context: Mapping[str, str]) -> GeneratedKey:
        plaintext = AESGCM.generate_key(256)
        wrapped, key_id = self.wrap(plaintext, context=context)
        return GeneratedKey(plaintext=plaintext, wrapped=wrapped, root_key_id=key_id)

    def wrap(self, plaintext: bytes, *, context: Mapping[str, str]) -> tuple[bytes, str]:
        self._calls.add()
        self._refresh()
        key_id = self._current
        nonce = os.urandom(12)
        return nonce + self._keys[key_id].encrypt(nonce, plaintext, _context_aad(key_id, context)), key_id

    def unwrap(self, wrapped: bytes, *, root_key_id: str, context: Mapping[str, str]) -> bytes:
        self._calls.add()
        self._refresh()
        root = self._keys.get(root_key_id)
        if root is None or len(wrapped) < 12 + 16:
            raise DecryptionError()
        try:
            return root.decrypt(wrapped[:12], wrapped[12:], _context_aad(root_key_id, context))
        except InvalidTag:
            raise DecryptionError() from None

    def call_count(self) -> int:
        return self._calls.value()

    def rotate(self) -> str:
        """Add a new root key and make it current; returns its id. Old keys stay until destroyed."""
        with self._lock:
            self._load()
            doc = dict(self._doc)
            key_id = self._new_key_id()
            doc["keys"] = {**doc["keys"], key_id: self._new_entry()}
            doc["current"] = key_id
            self._save(doc)
            return key_id

    def destroy(self, key_id: str) -> None:
        """Delete an old root key from the keyring for good (refuses the current one)."""
        with self._lock:
            self._load()
            if key_id == self._current:
                raise KeyringError("the current root key can't be destroyed; rotate first")
            doc = dict(self._doc)
            doc["keys"] = {k: v for k, v in doc["keys"].items() if k != key_id}
            self._save(doc)


# botocore error codes that mean "the key service can't help right now" (fail closed, retry later)
# as opposed to "this ciphertext is bad" (DecryptionError).
_KMS_BAD_CIPHERTEXT = {"InvalidCiphertextException", "IncorrectKeyException"}


class AwsKmsKeyProvider:
    """Root key in AWS KMS: tenant keys are generated and wrapped by KMS and unwrapped on demand.

    ``key_id`` (id, ARN or ``alias/...``) is the current root; tenant keys wrapped under an earlier KMS key
    still unwrap as long as that key exists, since KMS records which key wrapped a ciphertext. Calls have
    bounded time-outs and botocore's standard retries; then failures surface as
    :class:`KeyServiceUnavailable`.
    """

    name = "aws-kms"

    def __init__(
        self,
        key_id: str,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        client: Any = None,
        connect_timeout: float = 2.0,
        read_timeout: float = 5.0,
        max_attempts: int = 3,
    ) -> None:
        if not key_id:
            raise KeyringError("AWS KMS key provider needs a key id, ARN or alias")
        self.key_id = key_id
        self._resolved: str | None = key_id if key_id.startswith("arn:") and ":key/" in key_id else None
        self._calls = _Counter()
        if client is None:
            import boto3
            from botocore.config import Config
            from botocore.exceptions import NoRegionError

            if region is None and key_id.startswith("arn:"):
                region = key_id.split(":")[3] or None  # arn:aws:kms:REGION:ACCOUNT:key/ID names its region
            try:
                client = boto3.client(
                    "kms",
                    region_name=region,
                    endpoint_url=endpoint_url,
                    config=Config(
                        connect_timeout=connect_timeout,
                        read_timeout=read_timeout,
                        retries={"max_attempts": max_attempts, "mode": "standard"},
                    ),
                )
            except NoRegionError:
                raise KeyringError(
                    f"the AWS KMS key {key_id!r} needs a region: give its ARN, set its region "
                    "(LABELVAULT_KMS_REGION) or boto3's default (AWS_REGION, AWS_DEFAULT_REGION or ~/.aws/config)"
                ) from None
        self.client = client

    def current_key_id(self) -> str:
        """The configured key as KMS names it in responses (its ARN) once known; the configured id before."""
        return self._resolved or self.key_id

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        self._calls.add()
        try:
            result: dict[str, Any] = getattr(self.client, operation)(**kwargs)
            return result
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in _KMS_BAD_CIPHERTEXT:
                raise DecryptionError() from None
            raise KeyServiceUnavailable(f"AWS KMS refused {operation} ({code or 'unknown error'})") from None
        except BotoCoreError as exc:
            raise KeyServiceUnavailable(f"AWS KMS unreachable for {operation} ({type(exc).__name__})") from None

    def generate_key(self, *, context: Mapping[str, str]) -> GeneratedKey:
        r = self._call("generate_data_key", KeyId=self.key_id, KeySpec="AES_256", EncryptionContext=dict(context))
        self._resolved = r["KeyId"]
        return GeneratedKey(plaintext=r["Plaintext"], wrapped=r["CiphertextBlob"], root_key_id=r["KeyId"])

    def wrap(self, plaintext: bytes, *, context: Mapping[str, str]) -> tuple[bytes, str]:
        r = self._call("encrypt", KeyId=self.key_id, Plaintext=plaintext, EncryptionContext=dict(context))
        self._resolved = r["KeyId"]
        return r["CiphertextBlob"], r["KeyId"]

    def unwrap(self, wrapped: bytes, *, root_key_id: str, context: Mapping[str, str]) -> bytes:
        r = self._call("decrypt", CiphertextBlob=wrapped, KeyId=root_key_id, EncryptionContext=dict(context))
        plaintext: bytes = r["Plaintext"]
        return plaintext

    def call_count(self) -> int:
        return self._calls.value()


def make_key_provider(
    kind: str,
    *,
    keyring_path: str | os.PathLike[str] | None = None,
    kms_key_id: str | None = None,
    kms_region: str | None = None,
    kms_endpoint_url: str | None = None,
) -> KeyProvider:
    """Build the configured root key provider: ``local`` (keyring file) or ``aws-kms``."""
    if kind == "local":
        if keyring_path is None:
            raise KeyringError("the local key provider needs a keyring path")
        return LocalKeyProvider(keyring_path)
    if kind == "aws-kms":
        return AwsKmsKeyProvider(kms_key_id or "", region=kms_region, endpoint_url=kms_endpoint_url)
    raise KeyringError(f"unknown key provider {kind!r} (expected 'local' or 'aws-kms')")
