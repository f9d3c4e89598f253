"""Settings of the control-plane API (one typed object, injected into the app factory)."""

from __future__ import annotations

from pydantic import Field, SecretStr

from lcm_core.settings import EtcdSettings, LcmSettings


class ControlPlaneSettings(LcmSettings, EtcdSettings):
    """Everything the CPA reads from its environment."""

    host: str = Field(default="127.0.0.1", validation_alias="CPA_HOST")
    """Interface uvicorn binds to (0.0.0.0 in containers)."""

    port: int = Field(default=8030, ge=1, le=65535, validation_alias="CPA_PORT")
    """HTTP port of the API, the SSE stream and the dashboard."""

    mongodb_url: SecretStr = Field(
        default=SecretStr("mongodb://localhost:27017"), validation_alias="MONGODB_URL"
    )
    """MongoDB connection string (may embed credentials, hence secret)."""

    mongodb_database: str = Field(default="lcm", validation_alias="MONGODB_DATABASE")
    """Database holding every LCM collection."""

    redis_url: str = Field(default="redis://localhost:6379/0", validation_alias="REDIS_URL")
    """Redis for the durable event log that every CPA replica tails."""

    api_key: SecretStr = Field(default=SecretStr("change-me"), validation_alias="CONTROL_PLANE_API_KEY")
    """Shared key the controllers send as `X-API-Key` on internal endpoints."""

    jwt_public_key_file: str | None = Field(default=None, validation_alias="AUTH_JWT_PUBLIC_KEY_FILE")
    """PEM public key that verifies locally signed bearer tokens (the local stack writes one)."""

    dependency_timeout_seconds: float = Field(default=2.0, gt=0, validation_alias="CPA_DEPENDENCY_TIMEOUT")
    """Deadline of each dependency check made by `/api/ready`."""
