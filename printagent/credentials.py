"""Where the station's API key comes from: the OS keyring, or an environment variable, never the command line
(other users see a process's arguments) and never a plain file the agent reads.

The keyring entry is service :data:`KEYRING_SERVICE`, user = the vault's URL, so one PC can hold keys for a
test and a production vault. ``labelvault-print key set --vault URL`` stores it (asked with ``getpass``,
never echoed); the ``keyring`` library picks the OS's store (Secret Service on Linux, Credential Manager on
Windows). :data:`ENV_KEY` is for a service manager that injects secrets into the environment (systemd's
``LoadCredential`` or a Windows service's secret store); it wins over the keyring when set.
"""

from __future__ import annotations

import os

import keyring
import keyring.errors

KEYRING_SERVICE = "labelvault-print"
ENV_KEY = "LABELVAULT_PRINT_API_KEY"


class KeyMissing(LookupError):
    """No API key for this vault in the environment or the keyring; the message says how to store one."""


def api_key(vault_url: str) -> str:
    """The station's API key for ``vault_url``: :data:`ENV_KEY` if set, else the keyring's entry."""
    from_env = os.environ.get(ENV_KEY)
    if from_env:
        return from_env.strip()
    try:
        stored = keyring.get_password(KEYRING_SERVICE, vault_url)
    except keyring.errors.KeyringError as exc:
        raise KeyMissing(f"the OS keyring can't be read ({type(exc).__name__}); set {ENV_KEY} instead") from None
    if not stored:
        raise KeyMissing(f"no API key for {vault_url}: store one with `labelvault-print key set --vault {vault_url}`")
    return stored


def store_key(vault_url: str, key: str) -> None:
    """Put the station's key for ``vault_url`` in the OS keyring (replacing any earlier one)."""
    try:
        keyring.set_password(KEYRING_SERVICE, vault_url, key)
    except keyring.errors.KeyringError as exc:
        raise KeyMissing(f"the OS keyring can't store the key ({type(exc).__name__})") from None


def forget_key(vault_url: str) -> bool:
    """Remove the key for ``vault_url`` from the keyring; whether there was one."""
    try:
        keyring.delete_password(KEYRING_SERVICE, vault_url)
    except keyring.errors.PasswordDeleteError:
        return False
    return True
