"""Structural checks of the container deployment: docker-compose.yml, deploy/docker/Dockerfile,
.dockerignore, deploy/env.example and deploy/k8s/.

No Docker is needed: the files are parsed (PyYAML, tomllib, a small Dockerfile reader) and compared with the
code they deploy. The environment names are taken from the pydantic-settings classes themselves, so a
renamed or removed setting, a typo in compose, a console script that does not exist or a secret written
into a file fails here instead of at `docker compose up` on a production host.
"""

from __future__ import annotations

import importlib
import json
import re
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, get_args

import pytest
import yaml
from pydantic import AliasChoices, AliasPath, SecretStr
from pydantic_settings import BaseSettings

from lcm_core.controller_host import ControllerSettings
from lcm_core.settings import EtcdSettings, LcmSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / "deploy" / "env.example"
DOCKERIGNORE = ROOT / ".dockerignore"
K8S_DIR = ROOT / "deploy" / "k8s"


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

#: Names of ARCHITECTURE §7 that the deployment sets although the service's settings class does not read
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
            if isinstance(choice, AliasPath):
                choice = choice.path[0]
            if isinstance(choice, str):
                names[choice.upper()] = field_name
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
        token = re.fullmatch(r"\x00(\d+)\x00", password)
        if not token or found[int(token[1])]["op"] != ":?":
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


def default_port(service: str) -> int:
    return settings_class(service).model_fields["port"].default


# ------------------------------------------------------------------------------------------ compose

def test_required_services_exist() -> None:
    missing = (set(LCM_SERVICES) | set(INFRA_IMAGES)) - set(services())
    assert not missing, f"docker-compose.yml lacks services {sorted(missing)}"


@pytest.mark.parametrize("name", sorted(INFRA_IMAGES))
def test_infrastructure_images_and_named_volumes(name: str) -> None:
    service = services()[name]
    assert re.match(INFRA_IMAGES[name], service["image"]), f"{name}: unexpected image {service['image']!r}"
    assert "healthcheck" in service, f"{name} needs a healthcheck (dependants wait for service_healthy)"
    declared = set(compose().get("volumes") or {})
    named = {v.split(":")[0]: v.split(":")[1] for v in service.get("volumes", []) if isinstance(v, str)}
    data = [vol for vol, target in named.items() if target == INFRA_DATA_PATHS[name]]
    assert data, f"{name}: {INFRA_DATA_PATHS[name]} is not on a volume"
    assert data[0] in declared, f"{name}: {data[0]!r} is not a named volume declared at the top level"


def test_etcd_is_a_proper_single_member_cluster() -> None:
    command = services()["etcd"]["command"]
    flags = dict(arg.split("=", 1) for arg in command if isinstance(arg, str) and arg.startswith("--"))
    assert flags["--advertise-client-urls"] == "http://etcd:2379"
    assert flags["--listen-client-urls"].startswith("http://0.0.0.0:2379")
    assert flags["--initial-advertise-peer-urls"] == "http://etcd:2380"
    assert flags["--initial-cluster"] == f"{flags['--name']}=http://etcd:2380"
    assert flags["--initial-cluster-state"] == "new"
    assert flags["--data-dir"] == INFRA_DATA_PATHS["etcd"]
    for service in LCM_SERVICES:
        env = environment(services()[service])
        assert (env["ETCD_HOST"], env["ETCD_PORT"]) == ("etcd", "2379"), service


@pytest.mark.parametrize("service", sorted(LCM_SERVICES))
def test_lcm_service_is_built_from_a_dockerfile_of_the_repo(service: str) -> None:
    dockerfile, target = build_of(service)
    assert dockerfile.is_file(), f"{service}: {dockerfile} does not exist"
    assert ROOT in dockerfile.parents, f"{service}: the Dockerfile must live in the repository"
    _, stages = parse_dockerfile(dockerfile)
    assert target in stages, f"{service}: build target {target!r} is not a stage of {dockerfile.name}"
    context, _ = build_context(service)
    assert context == ROOT, f"{service}: the build context must be the repository root (COPY lcm-core/ ...)"


@pytest.mark.parametrize("service", CONTROLLERS)
def test_controllers_run_at_least_two_replicas(service: str) -> None:
    spec = services()[service]
    replicas = (spec.get("deploy") or {}).get("replicas", spec.get("scale", 1))
    same_image = [name for name, other in services().items()
                  if "build" in other and build_of(name) == build_of(service)]
    assert int(replicas) * len(same_image) >= 2, f"{service} must run at least two replicas"
    # Fixed names or host ports would make the second replica fail to start.
    assert "container_name" not in spec, f"{service}: container_name prevents replicas"
    assert not spec.get("ports"), f"{service}: published host ports prevent replicas"


@pytest.mark.parametrize("service", sorted(LCM_SERVICES))
def test_lcm_service_has_a_readiness_healthcheck_on_its_port(service: str) -> None:
    spec = services()[service]
    assert "healthcheck" in spec, f"{service} has no healthcheck"
    probe = probe_of(spec["healthcheck"])
    port = default_port(service)
    assert f"127.0.0.1:{port}{LCM_SERVICES[service].ready_path}" in probe, probe
    assert "python" in probe, "slim images have no curl/wget: probe with Python"
    assert "urllib" in probe, "slim images have no curl/wget: probe with Python"
    assert environment(spec).get(LCM_SERVICES[service].port_env) == str(port), (
        f"{service}: {LCM_SERVICES[service].port_env} must be {port}, the port the healthcheck probes")


@pytest.mark.parametrize("service", sorted(LCM_SERVICES))
def test_dependencies_wait_until_healthy(service: str) -> None:
    depends = services()[service].get("depends_on")
    assert isinstance(depends, dict), f"{service}: depends_on must use the long form with conditions"
    assert set(depends) == DEPENDENCIES[service]
    for name, spec in depends.items():
        assert spec.get("condition") == "service_healthy", f"{service} → {name}"
        assert "healthcheck" in services()[name], f"{name} needs a healthcheck: {service} waits for it"


@pytest.mark.parametrize("service", sorted(LCM_SERVICES))
def test_every_environment_name_is_a_real_setting(service: str) -> None:
    cls = settings_class(service)
    assert issubclass(cls, LcmSettings)
    assert issubclass(cls, EtcdSettings)
    if service in CONTROLLERS:
        assert issubclass(cls, ControllerSettings)
    unknown = set(environment(services()[service])) - allowed_env(service)
    assert not unknown, (f"{service}: {sorted(unknown)} are read by no field of {cls.__name__} "
                         "(nor by boto3); fix the name or add it to PENDING_SETTINGS with a reason")


@pytest.mark.parametrize("service", sorted(PENDING_SETTINGS))
def test_pending_settings_are_still_pending(service: str) -> None:
    implemented = PENDING_SETTINGS[service] & set(env_names(settings_class(service)))
    assert not implemented, (
        f"{sorted(implemented)} now exist in {service}'s settings: remove them from PENDING_SETTINGS")
    assert PENDING_SETTINGS[service] <= set(environment(services()[service])), "a pending name is not used"


@pytest.mark.parametrize("service", sorted(LCM_SERVICES))
def test_production_environment_and_reachable_bind_address(service: str) -> None:
    env = environment(services()[service])
    assert env.get("LCM_ENVIRONMENT") == "production"
    assert env.get("LOG_FORMAT") == "json"
    dockerfile, target = build_of(service)
    image_env = env_of(parse_dockerfile(dockerfile)[1], target)
    host_env = LCM_SERVICES[service].host_env
    assert env.get(host_env, image_env.get(host_env)) == "0.0.0.0", f"{service} must bind 0.0.0.0"
    if service in CONTROLLERS:
        assert env.get("CONTROL_PLANE_API_URL") == f"http://control-plane-api:{default_port('control-plane-api')}"


def test_no_secret_values_in_compose() -> None:
    problems = []
    for name, spec in services().items():
        secrets = secret_env_names(settings_class(name)) if name in LCM_SERVICES else set()
        for key, value in environment(spec).items():
            problems += [f"{name}: {p}" for p in secret_problems(key, value, secrets)]
    for match in interpolations(compose()):  # e.g. redis' --requirepass in a command
        if SECRET_NAME.search(var_name(match)) and match["op"] != ":?":
            problems.append(f"{match[0]}: secret variables must be required (:?) and have no default")
    assert not problems, "\n".join(problems)


def test_required_secrets_of_every_service_are_demanded() -> None:
    """Every non-optional SecretStr setting is set in compose from a required variable, so that a missing
    secret stops `docker compose up` instead of a service starting with a placeholder."""
    missing = []
    for service in LCM_SERVICES:
        cls = settings_class(service)
        env = environment(services()[service])
        for name in secret_env_names(cls):
            field = cls.model_fields[env_names(cls)[name]]
            if field.default is None:
                continue  # optional secret (AWS keys, licence token): passed through when set
            value = env.get(name)
            if value is None or not any(m["op"] == ":?" for m in INTERPOLATION.finditer(value)):
                missing.append(f"{service}: {name}")
    assert not missing, f"secrets without a required ${{VAR:?}} in compose: {missing}"


def test_optional_values_are_passed_through_not_emptied() -> None:
    """`${X:-}` gives the container an empty string, which is not "unset": an empty optional secret is
    refused in production and an empty URL is not None. Optional settings are listed without a value."""
    problems = [f"{name}: {key}={value!r}" for name, spec in services().items()
                for key, value in environment(spec).items()
                if value is not None and value != "" and resolve_default(value) == "" and
                not any(m["op"] in (":?", "?") for m in INTERPOLATION.finditer(value))]
    assert not problems, problems


def test_env_example_documents_every_variable_and_holds_no_secret() -> None:
    example = env_example()
    undocumented = compose_variables() - set(example)
    assert not undocumented, f"deploy/env.example lacks {sorted(undocumented)}"
    stale = set(example) - compose_variables()
    assert not stale, f"deploy/env.example documents variables compose does not use: {sorted(stale)}"
    filled = {k: v for k, v in example.items() if SECRET_NAME.search(k) and v.strip()}
    assert not filled, f"deploy/env.example must leave secrets empty: {sorted(filled)}"
    # Every variable has a comment line right above it (or above its group).
    lines = ENV_EXAMPLE.read_text().splitlines()
    for index, line in enumerate(lines):
        match = re.match(r"#?([A-Z][A-Z0-9_]*)=", line)
        if match:
            above = lines[index - 1] if index else ""
            assert above.startswith("#"), f"{match[1]} in deploy/env.example has no comment"


# --------------------------------------------------------------------------------------- Dockerfile

@pytest.mark.parametrize("service", sorted(LCM_SERVICES))
def test_dockerfile_stage_runs_the_console_script(service: str) -> None:
    spec = LCM_SERVICES[service]
    dockerfile, target = build_of(service)
    global_args, stages = parse_dockerfile(dockerfile)
    stage = stages[target]

    cmds = stage.all("CMD")
    assert cmds, f"{target}: no CMD"
    command = json.loads(cmds[-1])  # exec form: signals reach the process directly
    scripts = pyproject_scripts(spec.package_dir)
    assert command[0] in scripts, f"{target}: CMD {command[0]!r} is not a script of {spec.package_dir}: {scripts}"
    assert command[0] == spec.script
    assert scripts[command[0]].startswith(f"{spec.module}.main:")

    # The effective user is the last USER of the nearest stage (in the lineage) that sets one.
    user = next((s.all("USER")[-1] for s in lineage(stages, target) if s.all("USER")), None)
    assert user, f"{target} must set USER"
    assert user.split(":")[0] not in ("root", "0"), f"{target} must run as a non-root user"
    assert str(default_port(service)) in " ".join(stage.all("EXPOSE")).split(), f"{target}: EXPOSE the port"
    healthcheck = " ".join(stage.all("HEALTHCHECK"))
    assert spec.live_path in healthcheck, f"{target}: HEALTHCHECK must probe {spec.live_path}"
    assert "urllib" in healthcheck, f"{target}: HEALTHCHECK must probe with Python (no curl in slim images)"
    assert spec.port_env in healthcheck or str(default_port(service)) in healthcheck

    bases = {s.base for s in lineage(stages, target)}
    resolved = {global_args.get(b[2:-1], b) if b.startswith("${") else b for b in bases}
    assert "python:3.11-slim" in resolved, f"{target}: base image must be python:3.11-slim, got {resolved}"


@pytest.mark.parametrize("service", sorted(LCM_SERVICES))
def test_dockerfile_installs_lcm_core_and_the_service_without_dev_extras(service: str) -> None:
    spec = LCM_SERVICES[service]
    dockerfile, target = build_of(service)
    _, stages = parse_dockerfile(dockerfile)
    sources = [re.search(r"--from=(\S+)", c)[1] for c in stages[target].all("COPY") if "--from=" in c]
    assert sources, f"{target}: multi-stage build expected (COPY --from=<build stage>)"
    runs = [run for source in sources for s in lineage(stages, source) for run in s.all("RUN")]
    installs = " ".join(run for run in runs if "pip install" in run)
    assert f"./{spec.package_dir}" in installs, f"{target} does not pip install ./{spec.package_dir}"
    assert "./lcm-core" in installs, f"{target} does not pip install ./lcm-core"
    assert not re.search(r"\[[^\]]*\b(dev|test)\b", installs), f"{target} installs dev/test extras"
    assert not re.search(r"(^|\s)(-e|--editable)\s", installs), "no editable installs in images"


def test_dockerignore_keeps_local_state_and_secrets_out_of_the_context() -> None:
    patterns = {line.strip().rstrip("/") for line in DOCKERIGNORE.read_text().splitlines()
                if line.strip() and not line.startswith("#")}
    for required in (".venv", ".lcm", ".git", ".env", "tests", "**/__pycache__", "bench", "node_modules"):
        assert required in patterns, f".dockerignore must exclude {required}"
    for package in {s.package_dir for s in LCM_SERVICES.values()} | {"lcm-core"}:
        assert package not in patterns, f".dockerignore excludes {package}, which the images need"


# --------------------------------------------------------------------------------------- Kubernetes

def k8s_documents() -> list[dict[str, Any]]:
    return [doc for path in sorted(K8S_DIR.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text()) if doc]


@pytest.mark.skipif(not K8S_DIR.is_dir(), reason="no Kubernetes manifests")
def test_kubernetes_deployments() -> None:
    docs = k8s_documents()
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    config_keys = {k for d in docs if d["kind"] in ("ConfigMap", "Secret")
                   for k in {**d.get("data", {}), **d.get("stringData", {})}}
    assert set(LCM_SERVICES) <= set(deployments), f"Deployments: {sorted(deployments)}"
    for service, spec in LCM_SERVICES.items():
        deployment = deployments[service]["spec"]
        assert deployment["replicas"] >= 2, f"{service}: at least two replicas"
        pod = deployment["template"]["spec"]
        assert pod.get("securityContext", {}).get("runAsNonRoot") is True, f"{service}: runAsNonRoot"
        (container,) = pod["containers"]
        port = default_port(service)
        assert container["readinessProbe"]["httpGet"] == {"path": spec.ready_path, "port": port}
        assert container["livenessProbe"]["httpGet"] == {"path": spec.live_path, "port": port}
        names = {e["name"] for e in container.get("env", [])}
        unknown = names - allowed_env(service)
        assert not unknown, f"{service}: {sorted(unknown)} are not settings"
        literal_secrets = [e["name"] for e in container.get("env", [])
                           if "value" in e and (SECRET_NAME.search(e["name"]) or e["name"] in
                                                secret_env_names(settings_class(service)))]
        assert not literal_secrets, f"{service}: secrets must come from a Secret: {literal_secrets}"
    filled = [key for d in docs if d["kind"] == "Secret"
              for key, value in {**d.get("data", {}), **d.get("stringData", {})}.items() if value]
    assert not filled, f"the Secret in deploy/k8s is a template: leave {filled} empty"
    every_setting = set().union(*(allowed_env(s) for s in LCM_SERVICES))
    unread = config_keys - every_setting
    assert not unread, f"ConfigMap/Secret keys that no service reads: {sorted(unread)}"


# ------------------------------------------------------------------------------ the checks themselves

def test_checks_reject_what_they_should() -> None:
    """The helpers above find the mistakes they are meant to find (so a passing run means something)."""
    assert secret_problems("CONTROL_PLANE_API_KEY", "hunter2", set())
    assert secret_problems("CONTROL_PLANE_API_KEY", "${CONTROL_PLANE_API_KEY:-hunter2}", set())
    assert secret_problems("CONTROL_PLANE_API_KEY", "${CONTROL_PLANE_API_KEY}", set())
    assert secret_problems("MONGODB_URL", "mongodb://lcm:hunter2@mongo:27017", {"MONGODB_URL"})
    assert secret_problems("REDIS_URL", "redis://:hunter2@redis:6379/0", set())
    assert not secret_problems("CONTROL_PLANE_API_KEY", "${CONTROL_PLANE_API_KEY:?set it}", set())
    assert not secret_problems("MONGODB_URL", "mongodb://u:${MONGO_ROOT_PASSWORD:?x}@mongo:27017", {"MONGODB_URL"})
    assert not secret_problems("AWS_SECRET_ACCESS_KEY", None, set())
    assert "WORKER_DISCOVERY_REGION" not in allowed_env("worker-controller")  # a typo is caught
    assert "MONGODB_URL" not in allowed_env("worker-controller")  # controllers never touch MongoDB
    assert "AWS_SESSION_TOKEN" not in allowed_env("control-plane-api")
    assert {"WORKER_DISCOVERY_REGIONS", "CONTROL_PLANE_API_KEY", "LCM_ENVIRONMENT", "ETCD_HOST"} <= allowed_env(
        "worker-controller")
    assert resolve_default("${A:-x}${B}") == "x"
