"""Settings of the control-plane API (one typed object, injected into the app factory)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from lcm_core.settings import EtcdSettings, FleetDefaults, LcmSettings


class ControlPlaneSettings(LcmSettings, EtcdSettings, FleetDefaults):
    """Everything the CPA reads from its environment."""

    host: str = Field(default="127.0.0.1", validation_alias="CPA_HOST")
    """Interface uvicorn binds to (0.0.0.0 in containers)."""

    port: int = Field(default=8030, ge=1, le=65535, validation_alias="CPA_PORT")
    """HTTP port of the API, the SSE stream and the dashboard."""

    public_origins: Annotated[list[str], NoDecode] = Field(default_factory=list,
                                                           validation_alias="CPA_PUBLIC_ORIGINS")
    """Comma-separated origins (`https://lcm.example.com`, scheme, host and optional port) from which the
    dashboard's cookie may mutate, besides the request's own origin. Set it behind a TLS-terminating proxy
    whose `X-Forwarded-Proto` uvicorn does not trust. Default: none (only the request's own origin)."""

    mongodb_url: SecretStr = Field(
        default=SecretStr("mongodb://localhost:27017"), validation_alias="MONGODB_URL"
    )
    """MongoDB connection string (may embed credentials, hence secret)."""

    mongodb_database: str = Field(default="lcm", validation_alias="MONGODB_DATABASE")
    """Database holding every LCM collection."""

    redis_url: SecretStr = Field(default=SecretStr("redis://localhost:6379/0"), validation_alias="REDIS_URL")
    """Redis for the durable event log that every CPA replica tails (may embed a password, hence secret)."""

    api_key: SecretStr = Field(default=SecretStr("change-me"), validation_alias="CONTROL_PLANE_API_KEY")
    """Shared key the controllers send as `X-API-Key` on internal endpoints."""

    jwt_public_key_file: str | None = Field(default=None, validation_alias="AUTH_JWT_PUBLIC_KEY_FILE")
    """PEM public key that verifies RS256 bearer tokens (the local stack writes one)."""

    oidc_issuer: str | None = Field(default=None, validation_alias="AUTH_OIDC_ISSUER")
    """Expected `iss` of bearer tokens, e.g. `https://sso.example.com/realms/lcm`. Without a key file or
    JWKS URL, the JWKS is discovered from `{issuer}/.well-known/openid-configuration`."""

    jwks_url: str | None = Field(default=None, validation_alias="AUTH_JWKS_URL")
    """JWKS endpoint of the identity provider (Keycloak: `{issuer}/protocol/openid-connect/certs`)."""

    audience: str | None = Field(default="lcm", validation_alias="AUTH_AUDIENCE")
    """Required `aud` of bearer tokens; empty to skip the audience check."""

    client_id: str = Field(default="lcm", validation_alias="AUTH_CLIENT_ID")
    """Keycloak client whose `resource_access.<client>.roles` also grant LCM roles."""

    session_secret: SecretStr = Field(default=SecretStr("change-me"), validation_alias="AUTH_SESSION_SECRET")
    """Key that signs dashboard session cookies (HS256). Refused as a placeholder in production."""

    session_ttl_minutes: int = Field(default=480, ge=5, le=10080, validation_alias="AUTH_SESSION_TTL_MINUTES")
    """Lifetime of a dashboard session."""

    local_users_file: str | None = Field(default=None, validation_alias="AUTH_LOCAL_USERS_FILE")
    """JSON file of local dashboard users `{"users": [{"username", "password_hash", "roles"}]}`
    (PBKDF2 hashes; the local stack writes one). Unset: only bearer-token login."""

    cookie_secure: bool | None = Field(default=None, validation_alias="AUTH_COOKIE_SECURE")
    """Mark the session cookie `Secure` (HTTPS only). Default: on in production only."""

    max_body_bytes: int = Field(default=1024 * 1024, ge=1024, le=1024**3, validation_alias="CPA_MAX_BODY_BYTES")
    """Largest request body the API reads (1 MiB). A larger `Content-Length` is answered 413 at once; a body
    without one (chunked) is cut off with 413 as soon as it grows past the limit, so no more is ever held."""

    max_topology_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024, le=1024**3,
                                         validation_alias="CPA_MAX_TOPOLOGY_BODY_BYTES")
    """Allowance of the routes that take a CML topology (creating or versioning a lablet definition):
    4 MiB, several times the largest real lab YAML (a few hundred KB for ~100 nodes with configurations)."""

    login_hash_concurrency: int = Field(default=2, ge=1, le=64, validation_alias="AUTH_LOGIN_HASH_CONCURRENCY")
    """Password checks (PBKDF2) running at once, each on a worker thread, never on the event loop."""

    login_hash_wait_seconds: float = Field(default=2.0, gt=0, le=60, validation_alias="AUTH_LOGIN_HASH_WAIT_SECONDS")
    """How long a login waits for a free password-check slot before it is answered 429 (retry shortly)."""

    login_per_address_per_minute: int = Field(default=20, ge=1, le=100_000,
                                              validation_alias="AUTH_LOGIN_PER_ADDRESS_PER_MINUTE")
    """Login attempts (password or token) one client address may make per minute, in bursts of as many."""

    login_per_minute: int = Field(default=600, ge=1, le=1_000_000, validation_alias="AUTH_LOGIN_PER_MINUTE")
    """Login attempts one CPA replica accepts per minute from all addresses together (sheds load; each
    password check costs tens of milliseconds of CPU)."""

    login_free_failures: int = Field(default=3, ge=1, le=100, validation_alias="AUTH_LOGIN_FREE_FAILURES")
    """Failed logins for one account from one address before that pair must wait: 1 s after the next
    failure, doubling with each further one up to `AUTH_LOGIN_MAX_BACKOFF_SECONDS`; a success clears it."""

    login_max_backoff_seconds: float = Field(default=900.0, ge=1, le=86400,
                                             validation_alias="AUTH_LOGIN_MAX_BACKOFF_SECONDS")
    """Longest wait imposed on one account-and-address pair after repeated failures."""

    login_account_failures: int = Field(default=50, ge=1, le=1_000_000, validation_alias="AUTH_LOGIN_ACCOUNT_FAILURES")
    """Failed logins for one account (from any address) within 15 minutes after which every address that has
    itself failed for that account is refused until the window passes. An address with no failure for the
    account is never refused by this rule, so an attacker cannot lock the real user out."""

    sse_heartbeat_seconds: float = Field(default=15.0, gt=0, le=300, validation_alias="SSE_HEARTBEAT_SECONDS")
    """Interval of `heartbeat` events on idle SSE streams (keeps proxies from closing them)."""

    sse_max_connection_seconds: float = Field(default=3600.0, gt=0, validation_alias="SSE_MAX_CONNECTION_SECONDS")
    """Cap on one SSE connection's lifetime; the browser reconnects with `Last-Event-ID` and loses nothing."""

    sse_client_queue_size: int = Field(default=1000, ge=10, le=100_000, validation_alias="SSE_CLIENT_QUEUE_SIZE")
    """Events buffered per SSE client; a client that falls this far behind is disconnected (it replays)."""

    idle_threshold_minutes: float = Field(default=30, ge=0.05, le=10080, validation_alias="IDLE_THRESHOLD_MINUTES")
    """Idle threshold used until an operator sets the idle section of the system settings."""

    event_log_stream: str = Field(default="lcm:events", min_length=1, validation_alias="EVENT_LOG_STREAM")
    """Redis key of the event stream (one per LCM installation sharing a Redis)."""

    event_log_max_length: int = Field(default=100_000, ge=100, validation_alias="EVENT_LOG_MAX_LENGTH")
    """Approximate number of events the Redis stream keeps for replay."""

    dependency_timeout_seconds: float = Field(default=2.0, gt=0, validation_alias="CPA_DEPENDENCY_TIMEOUT")
    """Deadline of each dependency check made by `/api/ready`."""

    keep_alive_seconds: float = Field(default=75.0, gt=0, le=3600, validation_alias="CPA_KEEP_ALIVE_SECONDS")
    """How long an idle client connection stays open. Longer than the clients' own idle expiry (httpx: 5 s)
    and a load balancer's idle timeout (AWS ALB: 60 s), so the server never closes a connection that a client
    is reusing at that moment (the request would fail with a read error)."""

    metrics_history_hours: float = Field(default=24.0, gt=0, le=24 * 90, validation_alias="METRICS_HISTORY_HOURS")
    """How long each worker's utilisation samples are kept for the dashboard's charts."""

    controller_status_retention_seconds: float = Field(default=3600.0, ge=1, le=30 * 86400,
                                                       validation_alias="CONTROLLER_STATUS_RETENTION_SECONDS")
    """How long the last report of a controller replica that stopped reporting is kept. A controller's identity
    is its pod name in Kubernetes, new at every rollout: older reports are deleted (at most once a minute),
    except each service's newest, so `lcm_controller_replicas{service}` stays present (at 0) for the
    not-reporting alert. Keep it well above the report interval (15 s)."""

    oidc_login_client_id: str | None = Field(default=None, validation_alias="AUTH_OIDC_LOGIN_CLIENT_ID")
    """Client the dashboard's "Sign in with SSO" uses at `AUTH_OIDC_ISSUER` (authorization code + PKCE; the
    CPA exchanges the code). Unset: no SSO button, only local users."""

    oidc_login_client_secret: SecretStr | None = Field(default=None, validation_alias="AUTH_OIDC_LOGIN_CLIENT_SECRET")
    """Secret of that client when it is confidential (Keycloak "client authentication" on); unset for public."""

    oidc_login_scopes: str = Field(default="openid profile", validation_alias="AUTH_OIDC_LOGIN_SCOPES")
    """Scopes the SSO login asks for (the access token must carry the LCM roles and audience)."""

    oidc_redirect_url: str | None = Field(default=None, validation_alias="AUTH_OIDC_REDIRECT_URL")
    """The callback URL registered at the identity provider, e.g. `https://lcm.example.com/api/auth/oidc/callback`.
    Default: derived from the request (set it behind a reverse proxy that rewrites the host or scheme)."""

    lablet_port_range_start: int = Field(default=5000, ge=1, le=65535, validation_alias="LABLET_PORT_RANGE_START")
    """First port the CPA may allocate to a lablet session on a worker (serial/VNC/... consoles)."""

    lablet_port_range_end: int = Field(default=7999, ge=1, le=65535, validation_alias="LABLET_PORT_RANGE_END")
    """Last port (inclusive) of the lablet port range; a port is never given to two sessions of one worker."""

    lablet_observation_review_ratio: float = Field(default=0.25, gt=0, le=10,
                                                   validation_alias="LABLET_OBSERVATION_REVIEW_RATIO")
    """Relative difference between observed and declared CPU or memory above which a definition is flagged
    for review (an admin then decides whether to apply the observed values)."""

    lablet_sweep_interval_seconds: float = Field(default=15.0, ge=0.2, le=3600,
                                                 validation_alias="LABLET_EXPIRY_SWEEP_SECONDS")
    """How often each replica expires pending/scheduled sessions whose timeslot ended and releases
    reservations orphaned by a crash."""

    lablet_orphan_grace_seconds: float = Field(default=120.0, ge=1, le=86400,
                                               validation_alias="LABLET_ORPHAN_GRACE_SECONDS")
    """Age after which a reservation whose session does not hold the worker is released by the sweep."""

    @field_validator("public_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [o.strip() for o in value.split(",") if o.strip()]
        return value

    @field_validator("public_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
                raise ValueError(f"CPA_PUBLIC_ORIGINS: {origin!r} is not an http(s) origin")
        return value

    @model_validator(mode="after")
    def _port_range(self) -> ControlPlaneSettings:
        if self.lablet_port_range_end < self.lablet_port_range_start:
            raise ValueError("LABLET_PORT_RANGE_END must not be below LABLET_PORT_RANGE_START")
        return self
