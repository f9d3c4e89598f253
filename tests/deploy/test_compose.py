"""docker-compose.yml and deploy/env.example against the code they deploy (see deployment_model)."""

from __future__ import annotations

import json
import re

import jsonschema  # type: ignore[import-untyped]  # no stubs installed (types-jsonschema is not locked)
import pytest

from lcm_core.controller_settings import ControllerSettings
from lcm_core.settings import EtcdSettings, LcmSettings
from tests.deploy.deployment_model import (
    COMPOSE_SCHEMA,
    CONTROLLERS,
    DEPENDENCIES,
    ENV_EXAMPLE,
    INFRA_DATA_PATHS,
    INFRA_IMAGES,
    INTERPOLATION,
    LCM_SERVICES,
    PENDING_SETTINGS,
    ROOT,
    SECRET_NAME,
    allowed_env,
    build_context,
    build_of,
    compose,
    compose_variables,
    default_port,
    env_example,
    env_names,
    env_of,
    environment,
    interpolations,
    parse_dockerfile,
    probe_of,
    release_version,
    resolve_default,
    secret_env_names,
    secret_problems,
    services,
    settings_class,
    var_name,
)

# ------------------------------------------------------------------------------------------ compose

def test_compose_file_follows_the_compose_specification() -> None:
    """Against the Compose Specification's own JSON schema (vendored: compose-spec.SOURCE.md), as `docker
    compose config` would read it: a misspelt key or a value of the wrong type fails here."""
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(compose()), key=lambda e: list(e.absolute_path))
    assert not errors, "docker-compose.yml:\n" + "\n".join(
        f"  {'.'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in errors)


@pytest.mark.parametrize("service", sorted(LCM_SERVICES))
def test_lcm_images_default_to_the_release_tag(service: str) -> None:
    """Never `latest`: with nothing set, compose builds and runs the packages' version, as deploy/env.example says."""
    image = resolve_default(services()[service]["image"])
    assert image == f"lcm/{service}:{release_version()}", f"{service}: {image}"
    assert env_example()["LCM_VERSION"] == release_version()


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
