"""Where the API is and how to authenticate, from (first found wins) the command's flags, the environment
(`LCM_API_URL`, `LCM_TOKEN`), then what `lcm login` stored.

`lcm login` keeps the API's session (a signed cookie value, never a password) in `credentials.json` under the
user's config directory (`$LCM_CONFIG_DIR`, else `$XDG_CONFIG_HOME/lcm`, else `~/.config/lcm`), one entry per
API URL, readable by the user only (0600, in a 0700 directory)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_API_URL = "http://127.0.0.1:8030"
CREDENTIALS_FILE = "credentials.json"


def config_dir(environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    if env.get("LCM_CONFIG_DIR"):
        return Path(env["LCM_CONFIG_DIR"])
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "lcm"


@dataclass(frozen=True)
class StoredSession:
    api_url: str
    session: str
    subject: str
    roles: list[str]


class CredentialStore:
    """The sessions `lcm login` opened, by API URL."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / CREDENTIALS_FILE

    def _read(self) -> dict[str, Any]:
        try:
            found = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return found if isinstance(found, dict) else {}

    def get(self, api_url: str) -> StoredSession | None:
        entry = self._read().get("sessions", {}).get(api_url.rstrip("/"))
        if not isinstance(entry, dict) or not isinstance(entry.get("session"), str):
            return None
        return StoredSession(api_url.rstrip("/"), entry["session"], str(entry.get("subject", "")),
                             [str(r) for r in entry.get("roles", [])])

    def put(self, stored: StoredSession) -> None:
        content = self._read()
        sessions = content.setdefault("sessions", {})
        sessions[stored.api_url.rstrip("/")] = {"session": stored.session, "subject": stored.subject,
                                                "roles": stored.roles}
        self._write(content)

    def remove(self, api_url: str) -> bool:
        content = self._read()
        gone = content.get("sessions", {}).pop(api_url.rstrip("/"), None)
        if gone is not None:
            self._write(content)
        return gone is not None

    def _write(self, content: dict[str, Any]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_suffix(".tmp")
        # Created 0600 from the start: the session is never readable by others, not even for a moment.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(content, out, indent=2)
        os.chmod(tmp, 0o600)  # an older file of that name keeps its mode through O_TRUNC
        tmp.replace(self.path)


@dataclass(frozen=True)
class Target:
    """The API to call and the credentials to call it with."""

    api_url: str
    token: str | None
    session: str | None
    source: str
    """Where the credentials came from: "--token", "LCM_TOKEN", "lcm login" or "none"."""


def resolve(api_url: str | None, token: str | None, store: CredentialStore,
            environ: dict[str, str] | None = None) -> Target:
    env = os.environ if environ is None else environ
    url = (api_url or env.get("LCM_API_URL") or DEFAULT_API_URL).rstrip("/")
    if token:
        return Target(url, token, None, "--token")
    if env.get("LCM_TOKEN"):
        return Target(url, env["LCM_TOKEN"], None, "LCM_TOKEN")
    stored = store.get(url)
    if stored is not None:
        return Target(url, None, stored.session, "lcm login")
    return Target(url, None, None, "none")
