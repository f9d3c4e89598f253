"""What the deployment files are checked against: the LCM services, their settings classes and the
environment names those read, and readers of docker-compose.yml, deploy/env.example and the Dockerfile.

No Docker is needed: the files are parsed (PyYAML, tomllib, a small Dockerfile reader) and compared with the
code they deploy. The environment names are taken from the pydantic-settings classes themselves, so a
renamed or removed setting, a typo in compose, a console script that does not exist or a secret written
into a file fails in the tests instead of at `docker compose up` on a production host.
"""

from __future__ import annotations

import importlib
import re
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import AliasChoices, AliasPath, SecretStr
from pydantic_settings import BaseSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / "deploy" / "env.example"
DOCKERIGNORE = ROOT / ".dockerignore"
K8S_DIR = ROOT / "deploy" / "k8s"
K8S_BASE = K8S_DIR / "base"
K8S_OVERLAYS = K8S_DIR / "overlays"
SECRET_TEMPLATE = K8S_BASE / "secret.example.yaml"
#: The Compose Specification's JSON schema, vendored (see compose-spec.SOURCE.md).
COMPOSE_SCHEMA = Path(__file__).resolve().parent / "compose-spec.json"


@dataclass(frozen=True)
class LcmService:
    package_dir: str
    settings: str  # "module:Class"
    script: str
    module: str
    port_env: str
    host_env: str
    ready_path: str
    live_path: str


LCM_SERVICES = {
    "control-plane-api": LcmService("control-plane-api", "control_plane_api.settings:ControlPlaneSettings",
                                    "lcm-control-plane-api", "control_plane_api", "CPA_PORT", "CPA_HOST",
                                    "/api/ready", "/api/health"),
    "worker-controller": LcmService("worker-controller", "worker_controller.settings:WorkerControllerSettings",
                                    "lcm-worker-controller", "worker_controller", "WORKER_CONTROLLER_PORT",
                                    "CONTROLLER_HOST", "/ready", "/health"),
    "lablet-controller": LcmService("lablet-controller", "lablet_controller.settings:LabletControllerSettings",
                                    "lcm-lablet-controller", "lablet_controller", "LABLET_CONTROLLER_PORT",
                                    "CONTROLLER_HOST", "/ready", "/health"),
}
CONTROLLERS = ("worker-controller", "lablet-controller")
INFRA_IMAGES = {"mongo": r"mongo:7(\.|$)", "redis": r"redis:7(\.|$|-)", "etcd": r"quay\.io/coreos/etcd:v3\.5\.\d+$"}
INFRA_DATA_PATHS = {"mongo": "/data/db", "redis": "/data", "etcd": "/etcd-data"}
DEPENDENCIES = {
    "control-plane-api": {"mongo", "redis", "etcd"},
    "worker-controller": {"etcd", "control-plane-api"},
    "lablet-controller": {"etcd", "control-plane-api"},
}

#: Read by boto3/botocore themselves, not by a settings object; allowed on services that talk to AWS.
AWS_SDK_VARS = frozenset({
    "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_REGION", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_ROLE_ARN", "AWS_ROLE_SESSION_NAME", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CA_BUNDLE",
    "AWS_STS_REGIONAL_ENDPOINTS", "AWS_RETRY_MODE", "AWS_MAX_ATTEMPTS", "AWS_EC2_METADATA_DISABLED",
})

#: Configuration names that the deployment sets although the service's settings class does not read
#: them yet. Each entry must still be missing from the class: once the field exists the test below fails,
#: asking for the entry to be removed, so this list can only shrink.
PENDING_SETTINGS: dict[str, frozenset[str]] = {
    "control-plane-api": frozenset(),
    "worker-controller": frozenset(),
    "lablet-controller": frozenset(),
}

SECRET_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|API_KEY|PRIVATE|(^|_)KEY$|(^|_)AUTH$")
INTERPOLATION = re.compile(
    r"(?<!\$)\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


# ------------------------------------------------------------------------------------------- helpers

@cache
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def services() -> dict[str, Any]:
    return compose()["services"]


def settings_class(service: str) -> type[BaseSettings]:
    module, name = LCM_SERVICES[service].settings.split(":")
    return getattr(importlib.import_module(module), name)


def env_names(cls: type[BaseSettings]) -> dict[str, str]:
    """Environment names a pydantic-settings class reads, upper-cased, mapped to the field name."""
    prefix = (cls.model_config.get("env_prefix") or "").upper()
    names: dict[str, str] = {}
    for field_name, field in cls.model_fields.items():
        alias = field.validation_alias or field.alias
        choices = alias.choices if isinstance(alias, AliasChoices) else [alias]
        for choice in choices:
            name = choice.path[0] if isinstance(choice, AliasPath) else choice
            if isinstance(name, str):
                names[name.upper()] = field_name
        if alias is None:
            names[prefix + field_name.upper()] = field_name
    return names


def secret_env_names(cls: type[BaseSettings]) -> set[str]:
    """Environment names of SecretStr fields (optional ones included)."""
    secret_fields = {name for name, field in cls.model_fields.items()
                     if field.annotation is SecretStr or SecretStr in get_args(field.annotation)}
    return {env for env, name in env_names(cls).items() if name in secret_fields}


def environment(service: dict[str, Any]) -> dict[str, str | None]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # list syntax: "NAME=value" or "NAME" (pass-through)
        return {item.split("=", 1)[0]: (item.split("=", 1)[1] if "=" in item else None) for item in env}
    return {name: None if value is None else str(value) for name, value in env.items()}


def interpolations(value: Any) -> list[re.Match[str]]:
    """Every `${VAR...}` / `$VAR` in a (nested) compose value, `$$` escapes excluded."""
    if isinstance(value, dict):
        return [m for v in value.values() for m in interpolations(v)]
    if isinstance(value, list):
        return [m for v in value for m in interpolations(v)]
    if isinstance(value, str):
        return list(INTERPOLATION.finditer(value))
    return []


def var_name(match: re.Match[str]) -> str:
    return match["braced"] or match["bare"]


def compose_variables() -> set[str]:
    """Variables the operator can set for compose: interpolated ones and pass-through environment keys."""
    names = {var_name(m) for m in interpolations(compose())}
    for service in services().values():
        names |= {name for name, value in environment(service).items() if value is None}
    return names


def allowed_env(service: str) -> set[str]:
    cls = settings_class(service)
    allowed = set(env_names(cls)) | PENDING_SETTINGS[service]
    if "AWS_REGION" in allowed:
        allowed |= AWS_SDK_VARS
    return allowed


def resolve_default(value: str) -> str:
    """The value compose would produce with nothing set: `${X:-d}` → d, anything else → ''."""
    return INTERPOLATION.sub(lambda m: m["arg"] if m["op"] in (":-", "-") else "", value)


def secret_problems(name: str, value: str | None, secret_names: set[str]) -> list[str]:
    """Why an environment entry would put a secret into the file (empty when it does not)."""
    if value is None:
        return []
    problems = []
    is_secret = name in secret_names or SECRET_NAME.search(name)
    if is_secret and "://" not in value and not re.fullmatch(INTERPOLATION.pattern, value):
        problems.append(f"{name}: a secret must be exactly one ${{VAR:?...}} interpolation, got {value!r}")
    # Credentials inside a URL: the password part must come from the environment. Interpolations are
    # swapped for tokens first, since their `:-`/`:?` would look like the user:password separator.
    found: list[re.Match[str]] = []

    def token(match: re.Match[str]) -> str:
        found.append(match)
        return f"\x00{len(found) - 1}\x00"

    tokenised = INTERPOLATION.sub(token, value)
    userinfo = re.search(r"://([^@/]*)@", tokenised)
    if userinfo and ":" in userinfo[1]:
        password = userinfo[1].split(":", 1)[1]
        placeholder = re.fullmatch(r"\x00(\d+)\x00", password)
        if not placeholder or found[int(placeholder[1])]["op"] != ":?":
            problems.append(f"{name}: the URL password must be a ${{VAR:?...}} interpolation, got {password!r}")
    for match in INTERPOLATION.finditer(value):
        if SECRET_NAME.search(var_name(match)) and match["op"] not in (":?",):
            problems.append(f"{name}: secret variable {var_name(match)} must be required with :? (no default)")
    return problems


def env_example() -> dict[str, str]:
    """Variables of deploy/env.example, commented-out ones (`#NAME=`) included, with their values."""
    found = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.fullmatch(r"#?\s*([A-Z][A-Z0-9_]*)=(.*)", line.strip())
        if match:
            found[match[1]] = match[2]
    return found


# -------------------------------------------------------------------------------- Dockerfile reader

@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]]

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def parse_dockerfile(path: Path) -> tuple[dict[str, str], dict[str, Stage]]:
    """Global ARG defaults and the stages by name (continuation lines joined, comments dropped)."""
    logical, current = [], ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    args: dict[str, str] = {}
    stages: dict[str, Stage] = {}
    stage: Stage | None = None
    for line in logical:
        keyword, _, rest = line.partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        if keyword == "FROM":
            match = re.fullmatch(r"(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", rest, re.IGNORECASE)
            assert match, f"unreadable FROM: {line}"
            stage = Stage(match[2] or f"stage{len(stages)}", match[1], [])
            stages[stage.name] = stage
        elif stage is None:
            if keyword == "ARG" and "=" in rest:
                key, _, default = rest.partition("=")
                args[key] = default
        else:
            stage.instructions.append((keyword, rest))
    return args, stages


def lineage(stages: dict[str, Stage], name: str) -> list[Stage]:
    """A stage and the stages it is built FROM, nearest first."""
    chain = []
    while name in stages:
        chain.append(stages[name])
        name = stages[name].base
    return chain


def env_of(stages: dict[str, Stage], name: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for stage in reversed(lineage(stages, name)):
        for args in stage.all("ENV"):
            env.update(dict(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=(\S+)", args)))
    return env


def build_context(service: str) -> tuple[Path, dict[str, Any]]:
    build = services()[service]["build"]
    if isinstance(build, str):
        build = {"context": build}
    return (ROOT / build.get("context", ".")).resolve(), build


def build_of(service: str) -> tuple[Path, str]:
    """The Dockerfile (relative to the build context, as compose reads it) and the target of a service."""
    context, build = build_context(service)
    return context / build.get("dockerfile", "Dockerfile"), build.get("target", "")


def pyproject_scripts(package_dir: str) -> dict[str, str]:
    data = tomllib.loads((ROOT / package_dir / "pyproject.toml").read_text())
    return data.get("project", {}).get("scripts", {})


def probe_of(healthcheck: dict[str, Any] | list[str] | str) -> str:
    test = healthcheck["test"] if isinstance(healthcheck, dict) else healthcheck
    return " ".join(test) if isinstance(test, list) else test


def release_version() -> str:
    """The version of the LCM packages (one for all four), which the deployed images are tagged with."""
    versions = {tomllib.loads((ROOT / s.package_dir / "pyproject.toml").read_text())["project"]["version"]
                for s in LCM_SERVICES.values()} | {
        tomllib.loads((ROOT / "lcm-core" / "pyproject.toml").read_text())["project"]["version"]}
    assert len(versions) == 1, f"the LCM packages disagree on their version: {sorted(versions)}"
    return versions.pop()


def default_port(service: str) -> int:
    return settings_class(service).model_fields["port"].default
