"""Locally signed bearer tokens for the local stack (RS256), so `curl` and the browser can log in
without an identity provider. The CPA verifies them with the public key; production uses OIDC."""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from lcm_core.passwords import hash_password

ISSUER = "lcm-local"
AUDIENCE = "lcm"


def ensure_keypair(directory: Path) -> tuple[Path, Path]:
    """Create (once) and return the private and public PEM files under `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    private_path, public_path = directory / "jwt-private.pem", directory / "jwt-public.pem"
    if not private_path.exists() or not public_path.exists():
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        private_path.chmod(0o600)
        public_path.write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
    return private_path, public_path


def issue_token(private_key_pem: bytes, subject: str, roles: list[str], ttl_seconds: int) -> str:
    """A Keycloak-shaped access token: roles under `realm_access.roles`."""
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": subject,
        "preferred_username": subject,
        "realm_access": {"roles": roles},
        "iat": now,
        "exp": now + ttl_seconds,
    }
    return jwt.encode(claims, private_key_pem, algorithm="RS256", headers={"kid": "lcm-local"})


def ensure_local_users(directory: Path) -> tuple[Path, dict[str, str]]:
    """Dashboard users `admin` and `viewer` with random passwords, created once and kept across runs.

    Returns the users file (PBKDF2 hashes, read by the CPA) and {username: password} for the env file.
    """
    directory.mkdir(parents=True, exist_ok=True)
    users_path, secrets_path = directory / "local-users.json", directory / "local-passwords.json"
    if not users_path.exists() or not secrets_path.exists():
        passwords = {name: secrets.token_urlsafe(12) for name in ("admin", "viewer")}
        secrets_path.write_text(json.dumps(passwords))
        secrets_path.chmod(0o600)
        users = [{"username": name, "password_hash": hash_password(pw), "roles": [name]}
                 for name, pw in passwords.items()]
        users_path.write_text(json.dumps({"users": users}, indent=2))
    return users_path, json.loads(secrets_path.read_text())
