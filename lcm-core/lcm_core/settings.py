"""Typed settings base for every LCM service (pydantic-settings).

Each service defines one subclass with a default and a docstring per field and injects the instance;
nothing deep in the code reads the environment.
"""

from __future__ import annotations

from typing import Annotated, Literal, TypeVar

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from lcm_core.errors import ConfigurationError
from lcm_core.logging import register_secret

#: Placeholder secrets that ship in examples; refused anywhere but the local stack.
UNSAFE_SECRET_VALUES = frozenset({"", "change-me", "changeme", "xxx", "secret", "dev-api-key", "admin"})


class LcmSettings(BaseSettings):
    """Settings common to every LCM service."""

    # env_ignore_empty: `FOO=` (as compose passes an unset optional) means "use the default", not "empty".
    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False, env_ignore_empty=True)

    environment: Literal["local", "test", "production"] = Field(
        default="production", validation_alias="LCM_ENVIRONMENT"
    )
    """Where the service runs. Placeholder secrets are refused unless this is `local` or `test`."""

    log_level: str = Field(default="INFO", validation_alias="LOG_LEVEL")
    """Root log level (DEBUG, INFO, WARNING, ERROR)."""

    log_format: Literal["auto", "json", "text"] = Field(default="auto", validation_alias="LOG_FORMAT")
    """`json` for containers, `text` for humans; `auto` picks text on a terminal and JSON otherwise."""

    otel_exporter_otlp_endpoint: str | None = Field(
        default=None, validation_alias="OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    """OTLP/HTTP collector base URL (spans go to its `/v1/traces`). Tracing is a no-op when unset (and the next
    is too)."""

    otel_exporter_otlp_traces_endpoint: str | None = Field(
        default=None, validation_alias="OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    )
    """OTLP/HTTP traces URL, used as is (no `/v1/traces` appended); wins over the base URL above."""

    def secret_fields(self) -> dict[str, SecretStr]:
        """Every SecretStr field of this settings object, by name."""
        return {
            name: value for name, value in self.__dict__.items() if isinstance(value, SecretStr)
        }

    @model_validator(mode="after")
    def _refuse_unsafe_secrets(self) -> LcmSettings:
        for name, secret in self.secret_fields().items():
            value = secret.get_secret_value()
            register_secret(value)
            if self.environment == "production" and value.lower() in UNSAFE_SECRET_VALUES:
                raise ConfigurationError(
                    f"setting {name!r} holds a placeholder value; set a real secret "
                    "(or LCM_ENVIRONMENT=local for the local stack)"
                )
        return self


class EtcdSettings(BaseSettings):
    """Connection to etcd (leader election and the reactive keys)."""

    model_config = SettingsConfigDict(extra="ignore", env_ignore_empty=True)

    etcd_host: str = Field(default="localhost", validation_alias="ETCD_HOST")
    """etcd client host."""

    etcd_port: int = Field(default=2379, ge=1, le=65535, validation_alias="ETCD_PORT")
    """etcd client port."""

    etcd_prefix: str = Field(default="/lcm", validation_alias="ETCD_PREFIX")
    """Prefix of every LCM key in etcd."""

    etcd_timeout_seconds: float = Field(default=5.0, gt=0, validation_alias="ETCD_TIMEOUT")
    """Deadline of one etcd call."""


class FleetDefaults(BaseSettings):
    """The deployment's defaults of the run-time SystemSettings (discovery and metrics polling).

    An operator may override them in the dashboard. Until a section is set there, the worker-controller
    runs with these values and the control plane shows them, so both must be given the same environment.
    """

    model_config = SettingsConfigDict(extra="ignore", env_ignore_empty=True)

    discovery_enabled: bool = Field(default=True, validation_alias="WORKER_DISCOVERY_ENABLED")
    """Run the discovery loop (default of `settings.discovery.enabled`)."""

    discovery_regions: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["us-east-1"], min_length=1, validation_alias="WORKER_DISCOVERY_REGIONS")
    """Comma-separated AWS regions to scan (default of `settings.discovery.regions`)."""

    discovery_ami_name: str = Field(default="CML-*", min_length=1, validation_alias="WORKER_DISCOVERY_AMI_NAME")
    """AMI name glob of CML images (default of `settings.discovery.ami_name_pattern`)."""

    discovery_interval_seconds: float = Field(default=300, ge=1, validation_alias="WORKER_DISCOVERY_INTERVAL")
    """Seconds between discovery scans (default of `settings.discovery.scan_interval_seconds`)."""

    metrics_poll_interval_seconds: float = Field(default=60, ge=1, validation_alias="METRICS_POLL_INTERVAL")
    """Seconds between metrics cycles (default of `settings.monitoring.metrics_poll_interval_seconds`)."""

    @field_validator("discovery_regions", mode="before")
    @classmethod
    def _split_regions(cls, value: object) -> object:
        if isinstance(value, str):
            return [r.strip() for r in value.split(",") if r.strip()]
        return value


S = TypeVar("S", bound=BaseSettings)


def load_settings(cls: type[S]) -> S:
    """Read a service's settings; on bad values exit with one line per problem (no traceback, no values,
    since a value may be a secret)."""
    try:
        return cls()
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '?'}: {e['msg']}" for e in exc.errors())
        raise SystemExit(f"invalid settings for {cls.__name__}: {problems}") from None
    except ConfigurationError as exc:
        raise SystemExit(f"invalid settings for {cls.__name__}: {exc.message}") from None
