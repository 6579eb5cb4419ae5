"""The full deployment files (docker-compose.yml, Dockerfile, .dockerignore), checked without Docker.

The compose file is parsed with PyYAML (merge keys included), the Dockerfile line by line, and the
environment variables settings.py reads are collected from its source with `ast`.
"""

import ast
import json
import shlex
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
SETTINGS_FILE = ROOT / "maintenance_site" / "settings.py"

ENV_READERS = {
    "env_str",
    "env_bool",
    "env_int",
    "env_float",
    "env_list",
    "env_url",
    "env_choice",
    "env_rate",
    "env_parsed",
}
APP_SERVICES = {"migrate", "web", "worker", "beat"}
EXPECTED_SERVICES = {"postgres", "redis"} | APP_SERVICES
TRUE_VALUES = {"1", "true", "yes", "on"}


# --- helpers ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose):
    """What `docker compose up` starts: the services of no profile (the `scale` profile's are checked by
    tests/ops/test_scale_out.py)."""
    return {name: service for name, service in compose["services"].items() if not service.get("profiles")}


@pytest.fixture(scope="module")
def settings_env_names():
    """The first string argument of every env_* call in settings.py: the variables it reads."""
    names = set()
    for node in ast.walk(ast.parse(SETTINGS_FILE.read_text())):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        func_name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        first = node.args[0]
        if func_name in ENV_READERS and isinstance(first, ast.Constant) and isinstance(first.value, str):
            names.add(first.value)
    return names


def command(service: dict) -> list[str]:
    raw = service.get("command") or []
    return shlex.split(raw) if isinstance(raw, str) else [str(part) for part in raw]


def environment(service: dict) -> dict:
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        return dict(item.split("=", 1) if "=" in item else (item, None) for item in raw)
    return dict(raw)


def is_celery(cmd: list[str], subcommand: str) -> bool:
    return "celery" in cmd and subcommand in cmd


def built_services(services: dict) -> dict:
    return {name: service for name, service in services.items() if "build" in service}


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    instructions, pending = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, arguments = (pending + stripped).partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    return instructions


def exec_form(arguments: str) -> list[str]:
    return json.loads(arguments) if arguments.startswith("[") else shlex.split(arguments)


# --- compose: services and processes ----------------------------------------------------------------


def test_expected_services_exist(services):
    assert set(services) >= EXPECTED_SERVICES, f"missing: {EXPECTED_SERVICES - set(services)}"


def test_app_services_are_built_from_the_project(services):
    assert set(built_services(services)) == APP_SERVICES
    assert services["postgres"]["image"].startswith("postgres:16")
    assert services["redis"]["image"].startswith("redis:7")


def test_exactly_one_beat_with_the_database_scheduler(services):
    beats = [name for name, service in services.items() if is_celery(command(service), "beat")]
    assert beats == ["beat"]
    cmd = command(services["beat"])
    assert cmd[cmd.index("--scheduler") + 1] == "django_celery_beat.schedulers:DatabaseScheduler"
    replicas = services["beat"].get("deploy", {}).get("replicas", 1)
    assert replicas == 1, "a second beat only sends every periodic job twice"


def test_no_worker_embeds_beat(services):
    workers = [name for name, service in services.items() if is_celery(command(service), "worker")]
    assert workers == ["worker"]
    for name, service in services.items():
        cmd = command(service)
        if "celery" in cmd:
            assert "-B" not in cmd and "--beat" not in cmd, f"{name} runs an embedded beat"
    assert command(services["worker"])[:3] == ["celery", "-A", "maintenance_site"]


def test_web_runs_daphne_with_the_pool(services):
    web = services["web"]
    cmd = command(web)
    # daphne through its launcher, which answers over-long request lines with a 414 (tests/ops/test_webserver.py)
    assert cmd[:3] == ["python", "-m", "maintenance_site.ops.webserver"]
    assert "maintenance_site.asgi:application" in cmd
    assert cmd[cmd.index("-b") + 1] == "0.0.0.0"
    assert cmd[cmd.index("-p") + 1] == "8000"
    assert str(environment(web).get("DATABASE_POOL", "")).lower() in TRUE_VALUES


@pytest.mark.parametrize("name", ["worker", "beat", "migrate"])
def test_only_web_uses_the_pool(services, name):
    # The psycopg pool does not survive a fork: prefork workers keep persistent connections instead.
    value = environment(services[name]).get("DATABASE_POOL")
    assert value is None or str(value).lower() not in TRUE_VALUES, f"{name} sets DATABASE_POOL={value}"


def test_migrate_is_a_one_shot_migration(services):
    migrate = services["migrate"]
    assert command(migrate)[:3] == ["python", "manage.py", "migrate"]
    assert str(migrate.get("restart", "no")) == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"


@pytest.mark.parametrize("name", ["web", "worker", "beat"])
def test_app_processes_start_after_migrate_and_redis(services, name):
    depends_on = services[name]["depends_on"]
    assert depends_on["migrate"]["condition"] == "service_completed_successfully"
    assert depends_on["redis"]["condition"] == "service_healthy"


# --- compose: environment ---------------------------------------------------------------------------


def test_every_project_service_reaches_postgres_and_redis(services):
    for name, service in built_services(services).items():
        env = environment(service)
        assert env.get("DATABASE_URL", "").startswith("postgres://"), name
        assert "@postgres:5432/" in env["DATABASE_URL"], name
        assert env.get("REDIS_URL", "").startswith("redis://redis:6379"), name


def test_settings_env_names_are_collected(settings_env_names):
    # Guards the next test against passing vacuously because nothing was collected.
    assert {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DATABASE_POOL", "DEBUG"} <= settings_env_names


def test_app_services_set_only_variables_settings_reads(compose, settings_env_names):
    unknown = {
        f"{name}: {variable}"
        for name, service in compose["services"].items()
        if "build" in service
        for variable in environment(service)
        if not variable.startswith("POSTGRES_") and variable not in settings_env_names
    }
    assert not unknown, f"variables settings.py never reads: {sorted(unknown)}"


def test_environment_values_are_strings(compose):
    # Compose rejects unquoted YAML booleans (true/false) in `environment`.
    for name, service in compose["services"].items():
        for variable, value in environment(service).items():
            assert isinstance(value, str), f"{name}: {variable}={value!r} must be quoted"


def test_production_environment(services):
    for name, service in built_services(services).items():
        env = environment(service)
        assert env["DEBUG"].lower() == "false", name
        assert env["SECRET_KEY"].startswith("${SECRET_KEY:?"), f"{name}: SECRET_KEY must be required"
        assert env["SECURE_SSL_REDIRECT"].lower() == "false", name
        assert env["LOG_FORMAT"] == "json", name
        for variable in ("ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS", "ALLOWED_ORIGINS"):
            assert variable in env, f"{name} lacks {variable}"
        # The web healthcheck calls 127.0.0.1, which must stay an allowed host.
        assert "127.0.0.1" in env["ALLOWED_HOSTS"].split(","), name


# --- compose: healthchecks and volumes --------------------------------------------------------------


def healthcheck_text(service: dict) -> str:
    test = service["healthcheck"]["test"]
    return " ".join(test) if isinstance(test, list) else test


def test_healthchecks(services):
    assert "pg_isready" in healthcheck_text(services["postgres"])
    assert "redis-cli ping" in healthcheck_text(services["redis"])
    web_check = healthcheck_text(services["web"])
    assert "python" in web_check and "urllib" in web_check
    assert ":8000/health" in web_check and "/health/ready" not in web_check


def test_volumes_are_declared(compose, services):
    declared = set(compose.get("volumes") or {})
    used = set()
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0] if isinstance(volume, str) else volume.get("source", "")
            if source and not source.startswith(("/", ".", "~", "$")):
                used.add(source)
    assert used, "no named volumes are mounted"
    assert used <= declared, f"undeclared volumes: {used - declared}"
    mounts = {name: " ".join(map(str, services[name].get("volumes", []))) for name in ("postgres", "redis")}
    assert ":/var/lib/postgresql/data" in mounts["postgres"]
    assert ":/data" in mounts["redis"]


# --- Dockerfile and .dockerignore -------------------------------------------------------------------


def test_dockerfile_base_image_and_install():
    instructions = dockerfile_instructions()
    stages = [arguments for keyword, arguments in instructions if keyword == "FROM"]
    # a Node stage only fetches the front-end packages (npm ci); the image itself is Python's
    assert stages == ["node:20-slim AS frontend", "python:3.11-slim"]
    copies = " ".join(arguments for keyword, arguments in instructions if keyword == "COPY")
    assert "--from=frontend" in copies, "the image takes the npm packages from the frontend stage"
    runs = " ".join(arguments for keyword, arguments in instructions if keyword == "RUN")
    assert "pip install" in runs
    assert "[test]" not in runs and "[dev]" not in runs, "dev extras do not belong in the image"
    assert "collectstatic --noinput" in runs
    assert ("EXPOSE", "8000") in instructions


def test_dockerfile_starts_daphne():
    instructions = dockerfile_instructions()
    starts = [exec_form(arguments) for keyword, arguments in instructions if keyword in ("CMD", "ENTRYPOINT")]
    assert starts, "no CMD or ENTRYPOINT"
    started = [part for start in starts for part in start]
    assert "maintenance_site.ops.webserver" in started  # daphne, with 414s (maintenance_site/ops/webserver.py)
    assert "maintenance_site.asgi:application" in started
    assert "0.0.0.0" in started and "8000" in started


def test_dockerfile_does_not_run_as_root():
    instructions = dockerfile_instructions()
    users = [(i, arguments) for i, (keyword, arguments) in enumerate(instructions) if keyword == "USER"]
    assert users, "no USER line: the container would run as root"
    last_user_at, user = users[-1]
    assert user.split(":", 1)[0] not in ("root", "0")
    # collectstatic runs as the runtime user, so the collected files belong to it.
    collect_at = next(i for i, (k, a) in enumerate(instructions) if k == "RUN" and "collectstatic" in a)
    assert last_user_at < collect_at


def test_dockerignore_keeps_local_state_out_of_the_image():
    patterns = {line.strip().rstrip("/") for line in DOCKERIGNORE.read_text().splitlines()}
    assert {".git", ".venv", "var", "tests"} <= patterns
    for needed in ("pyproject.toml", "manage.py", "README.md", "maintenance_site"):
        assert needed not in patterns, f"{needed} is needed to build the image"
