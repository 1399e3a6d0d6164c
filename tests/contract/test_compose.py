"""docker-compose.yml and deploy/ agree with the code; no Docker engine needed.

Everything the deployment files name is looked up where the code defines it: processes
and ports in rcm_shared.topology, environment variables in the settings classes, metric
names in the registry that rcm_shared.telemetry and FastStream's middleware fill.
"""

from __future__ import annotations

import json
import pkgutil
import re
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from importlib import import_module
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from rcm_shared.topology import PAYER_SIMULATOR, PROCESSES, SERVICES, Process

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
MONGO_INIT = REPO / "deploy" / "compose" / "mongo-init.js"
DEPLOY = REPO / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "rcm-platform.json"
BY_NAME = {process.name: process for process in PROCESSES}
DATABASE_OWNERS = {process.name for process in SERVICES}  # the payer simulator keeps none


def load_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as stream:
        return yaml.safe_load(stream)  # resolves the x-rcm-* anchors and << merges


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = load_yaml(COMPOSE)
    return document


def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


def platform_containers(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The compose services built from deploy/Dockerfile: the platform's own processes."""
    built = {}
    for name, service in services(compose).items():
        build = service.get("build")
        if build is None:
            continue
        if isinstance(build, str):
            build = {"context": build}
        context = REPO / build.get("context", ".")
        if (context / build.get("dockerfile", "Dockerfile")).resolve() == DOCKERFILE:
            built[name] = service
    return built


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment, whether compose spells it as a mapping or a list."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(key): "" if value is None else str(value) for key, value in env.items()}


def published_ports(service: dict[str, Any]) -> set[tuple[int, int]]:
    """(host port, container port) pairs, from short ("[ip:]8001:8001") or long syntax."""
    pairs = set()
    for port in service.get("ports", []):
        if isinstance(port, dict):
            pairs.add((int(port["published"]), int(port["target"])))
        else:
            *_, host, container = str(port).split(":")
            pairs.add((int(host), int(container.split("/")[0])))
    return pairs


def published_hosts(service: dict[str, Any]) -> list[str]:
    """The host address of each published port ("" where compose would take every one)."""
    hosts = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            hosts.append(str(port.get("host_ip", "")))
        else:
            parts = str(port).split(":")
            hosts.append(":".join(parts[:-2]) if len(parts) > 2 else "")
    return hosts


# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}, ${NAME:+alt}
INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}")


def required_variable(value: str) -> str | None:
    """NAME when the value is exactly ${NAME:?...}: taken from the environment, refused
    when unset or empty, nothing written here."""
    match = INTERPOLATION.fullmatch(value)
    return match[1] if match and match[2] == ":?" else None


def interpolate(value: str, variables: dict[str, str] | None = None) -> str:
    """The value as compose would pass it, with each variable set to a sample (or `variables`)."""
    sample = variables or {}
    replaced = INTERPOLATION.sub(lambda m: sample.get(m[1], f"sample-{m[1].lower()}"), value)
    return replaced.replace("$$", "$")


def volume_mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> source, for short ("src:target[:ro]") and long syntax."""
    mounts = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            mounts[volume["target"]] = volume.get("source", "")
        else:
            source, target, *_ = str(volume).split(":")
            mounts[target] = source
    return mounts


# --- processes ---------------------------------------------------------------------------


def test_one_container_per_process(compose: dict[str, Any]) -> None:
    assert set(platform_containers(compose)) == set(BY_NAME)


@pytest.mark.parametrize("process", PROCESSES, ids=lambda process: process.name)
def test_container_runs_its_process(compose: dict[str, Any], process: Process) -> None:
    service = platform_containers(compose)[process.name]
    env = environment(service)

    assert service["command"] == ["python", "-m", process.module]
    assert published_ports(service) == {(process.http_port, process.http_port)}
    assert env["RCM_HTTP_PORT"] == str(process.http_port)
    assert env["RCM_HTTP_HOST"] == "0.0.0.0"  # reachable from other containers
    assert env.get("RCM_SERVICE_NAME", process.name) == process.name
    assert "/health/ready" in " ".join(service["healthcheck"]["test"])
    depends = service["depends_on"]
    for infrastructure in ("kafka", "mongodb"):
        assert depends[infrastructure]["condition"] == "service_healthy"


def test_prometheus_scrapes_every_process(compose: dict[str, Any]) -> None:
    config = load_yaml(DEPLOY / "prometheus.yml")
    jobs = {
        job["job_name"]: {
            target for static in job.get("static_configs", []) for target in static["targets"]
        }
        for job in config["scrape_configs"]
        if job.get("metrics_path", "/metrics") == "/metrics"
    }
    # One job per process, named after it: the dashboard filters on `job`.
    assert jobs == {process.name: {f"{process.name}:{process.http_port}"} for process in PROCESSES}
    assert set(jobs) <= set(services(compose))


# --- environment ----------------------------------------------------------------------------


def settings_env_names(settings_class: Any) -> set[str]:
    """Environment variables a pydantic-settings class reads (upper case)."""
    from pydantic import AliasChoices

    config = settings_class.model_config
    prefix = config.get("env_prefix", "")
    names: set[str] = set()
    for field_name, field in settings_class.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(choice for choice in alias.choices if isinstance(choice, str))
        elif isinstance(alias, str):
            names.add(alias)
        elif field.alias:
            names.add(field.alias)
        else:
            names.add(prefix + field_name)
    if not config.get("case_sensitive", False):
        names = {name.upper() for name in names}
    return names


def test_shared_environment_is_read_by_service_settings(compose: dict[str, Any]) -> None:
    """What every process gets (the x-rcm-env block) must be known to ServiceSettings."""
    from rcm_shared.settings import ServiceSettings

    envs = [set(environment(service)) for service in platform_containers(compose).values()]
    unknown = set.intersection(*envs) - settings_env_names(ServiceSettings)
    assert not unknown, f"set on every container but read by ServiceSettings: {unknown}"


def import_tree(module: str) -> dict[str, str]:
    """Import a module and all its submodules but __main__ (that one starts the process).

    Returns the modules that failed, with why.
    """
    errors: dict[str, str] = {}

    def attempt(name: str) -> Any:
        try:
            return import_module(name)
        except (Exception, SystemExit) as error:  # load_settings exits on bad config
            errors[name] = f"{type(error).__name__}: {error}"
            return None

    package = attempt(module)
    if package is not None and hasattr(package, "__path__"):
        for info in pkgutil.walk_packages(package.__path__, f"{module}.", onerror=attempt):
            if info.name.rsplit(".", 1)[-1] != "__main__":
                attempt(info.name)
    return errors


def subclasses(cls: type) -> Iterator[type]:
    subclass: type
    for subclass in cls.__subclasses__():
        yield subclass
        yield from subclasses(subclass)


def inspect_settings(modules: list[str]) -> dict[str, Any]:
    """Run in a child process (see below): which env vars do the processes' settings read?"""
    from rcm_shared.settings import ServiceSettings

    errors: dict[str, str] = {}
    for module in modules:
        errors.update(import_tree(module))
    # Settings classes of the processes and the shared library, not of tests.
    roots = {*modules, "rcm_shared"}
    classes = [ServiceSettings] + [
        cls for cls in subclasses(ServiceSettings) if cls.__module__.split(".")[0] in roots
    ]
    return {
        "errors": errors,
        "settings": {
            f"{cls.__module__}.{cls.__qualname__}": sorted(settings_env_names(cls))
            for cls in classes
        },
    }


def test_environment_is_read_by_settings(compose: dict[str, Any]) -> None:
    # The service modules are imported in a child process: importing one may build its
    # Service, which sets the global tracer provider that other tests rely on.
    child = subprocess.run(
        [sys.executable, __file__, *(process.module for process in PROCESSES)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
        check=False,
    )
    assert child.returncode == 0, child.stderr
    report = json.loads(child.stdout.strip().splitlines()[-1])

    problems = [f"{name} is not importable: {why}" for name, why in report["errors"].items()]
    readable = set().union(*map(set, report["settings"].values()))
    for name, service in platform_containers(compose).items():
        for variable in environment(service):
            if variable.upper() not in readable:
                problems.append(f"{name}: {variable} is read by no ServiceSettings class")
    assert not problems, "\n".join(problems)


def test_addresses_name_compose_services(compose: dict[str, Any]) -> None:
    known = services(compose)
    kafka_env = environment(known["kafka"])
    advertised = {
        listener.split("://", 1)[1]
        for listener in kafka_env["KAFKA_ADVERTISED_LISTENERS"].split(",")
    }
    mongod = known["mongodb"]["command"]
    replica_set = mongod[mongod.index("--replSet") + 1]
    simulator = BY_NAME["payer-simulator"]

    for name, service in platform_containers(compose).items():
        env = environment(service)
        for server in env["KAFKA_BOOTSTRAP_SERVERS"].split(","):
            assert server in advertised, f"{name}: Kafka does not advertise {server}"
        if name in DATABASE_OWNERS or "MONGODB_URL" in env:  # the simulator keeps no data
            mongo = urlsplit(interpolate(env["MONGODB_URL"]))
            assert mongo.hostname in known, name
            assert parse_qs(mongo.query).get("replicaSet") == [replica_set], name
        if "OTEL_EXPORTER_OTLP_ENDPOINT" in env:
            assert urlsplit(env["OTEL_EXPORTER_OTLP_ENDPOINT"]).hostname in known, name
        if "RCM_CLEARINGHOUSE_URL" in env:
            url = urlsplit(env["RCM_CLEARINGHOUSE_URL"])
            assert (url.hostname, url.port) == (simulator.name, simulator.http_port), name
        if "RCM_X12_ARCHIVE_DIR" in env:
            source = volume_mounts(service).get(env["RCM_X12_ARCHIVE_DIR"])
            assert source in compose.get("volumes", {}), f"{name}: X12 archive not on a volume"


# --- transport security (decisions.md §22) ---------------------------------------------------


def test_every_port_is_published_on_loopback_only(compose: dict[str, Any]) -> None:
    for name, service in services(compose).items():
        for host in published_hosts(service):
            assert host == "127.0.0.1", f"{name} publishes a port on {host or 'every address'}"


def test_every_process_signs_in_with_the_identity_provider_from_the_environment(
    compose: dict[str, Any],
) -> None:
    for name, service in platform_containers(compose).items():
        env = environment(service)
        for variable in ("RCM_AUTH_JWKS_URL", "RCM_AUTH_ISSUER"):
            assert variable in env, f"{name} has no {variable}: it would not start"
            assert required_variable(env[variable]) == variable, f"{name}: {variable}"


def test_mongodb_requires_sign_in(compose: dict[str, Any]) -> None:
    mongodb = services(compose)["mongodb"]
    env = environment(mongodb)
    for variable in ("MONGO_INITDB_ROOT_USERNAME", "MONGO_INITDB_ROOT_PASSWORD"):
        assert required_variable(env.get(variable, "")) == variable, variable
    command = mongodb["command"]
    assert "--keyFile" in command  # a replica set with access control needs one
    mounts = volume_mounts(mongodb)
    assert mounts["/docker-entrypoint-initdb.d/mongo-init.js"] == "./deploy/compose/mongo-init.js"
    entrypoint = " ".join(mongodb["entrypoint"])
    assert any(target in entrypoint for target in mounts), "the entry point is not mounted"


def mongo_init_services() -> list[str]:
    text = MONGO_INIT.read_text(encoding="utf-8")
    listed = re.search(r"const SERVICES = \[([^\]]*)\]", text)
    assert listed is not None, "mongo-init.js lists no SERVICES"
    assert 'roles: [{ role: "readWrite", db: database }]' in text  # that database only
    assert "const database = `rcm_${service}`;" in text
    assert "`MONGO_${service.toUpperCase()}_PASSWORD`" in text  # the password's variable
    return re.findall(r'"([a-z][a-z0-9-]*)"', listed[1])


@pytest.mark.parametrize("process", SERVICES, ids=lambda process: process.name)
def test_each_service_signs_in_to_its_own_database_as_its_own_user(
    compose: dict[str, Any], process: Process
) -> None:
    from rcm_shared.settings import ServiceSettings

    database = ServiceSettings(service_name=process.name).database_name  # type: ignore[call-arg]
    password_variable = f"MONGO_{process.name.upper()}_PASSWORD"
    env = environment(platform_containers(compose)[process.name])
    url = urlsplit(interpolate(env["MONGODB_URL"]))

    assert url.username == process.name
    assert url.password == f"sample-{password_variable.lower()}"
    assert f"${{{password_variable}:?" in env["MONGODB_URL"]  # required, from the environment
    assert url.path == f"/{database}"
    assert parse_qs(url.query).get("authSource") == [database]
    # mongo-init.js creates that user, with that password, on that database.
    assert process.name in mongo_init_services()
    assert f"rcm_{process.name}" == database
    mongodb_env = environment(services(compose)["mongodb"])
    assert required_variable(mongodb_env.get(password_variable, "")) == password_variable


def test_mongo_init_creates_users_only_for_the_services(compose: dict[str, Any]) -> None:
    assert sorted(mongo_init_services()) == sorted(DATABASE_OWNERS)
    simulator = environment(platform_containers(compose)[PAYER_SIMULATOR.name])
    assert "MONGODB_URL" not in simulator  # no data, so no database credentials


def test_no_secret_is_written_in_compose_and_env_example_lists_every_one(
    compose: dict[str, Any],
) -> None:
    required: set[str] = set()
    for name, service in services(compose).items():
        for variable, value in environment(service).items():
            required.update(match[1] for match in INTERPOLATION.finditer(value) if match[2] == ":?")
            if re.search(r"PASSWORD|SECRET|TOKEN", variable):
                assert required_variable(value), f"{name}: {variable} is written in compose"
            if "://" in value:
                userinfo = urlsplit(interpolate(value)).password
                if userinfo is not None:
                    raw_password = value.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
                    assert required_variable(raw_password), f"{name}: a password in {variable}"
    example = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            example[key.strip()] = value.strip()
    assert required <= set(example), f"missing from .env.example: {sorted(required - set(example))}"
    for key, value in example.items():
        if re.search(r"PASSWORD|SECRET|TOKEN", key):
            assert value == "", f".env.example holds a value for {key}"
    ignored = (REPO / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert ".env" in ignored
    assert ".env" in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()


def test_dependencies_volumes_and_mounted_files_exist(compose: dict[str, Any]) -> None:
    known = services(compose)
    for name, service in known.items():
        depends = service.get("depends_on", {})
        for dependency in depends:
            assert dependency in known, f"{name} depends on unknown {dependency}"
            condition = depends[dependency].get("condition") if isinstance(depends, dict) else None
            if condition == "service_healthy":
                assert "healthcheck" in known[dependency], f"{dependency} has no healthcheck"
        for source in volume_mounts(service).values():
            if source.startswith((".", "/")):
                assert (REPO / source).exists(), f"{name} mounts missing {source}"
            elif source.startswith("${"):  # a secret file the operator provides
                variable = required_variable(source)
                assert variable is not None, f"{name} mounts {source} without requiring it"
                assert f"\n{variable}=" in ENV_EXAMPLE.read_text(), f"{variable} unexplained"
            else:
                assert source in compose.get("volumes", {}), f"{name}: undeclared volume {source}"


# --- images -----------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, arguments = line.partition(" ")
            instructions.append((keyword.upper(), arguments.strip()))
    return instructions


def assert_pinned(image: str) -> None:
    name = image.rsplit("/", 1)[-1]  # a registry host may carry a port: host:5000/name
    tag = name.partition("@")[0].partition(":")[2]
    assert "@sha256:" in image or tag, f"{image} has no tag"
    assert tag != "latest", f"{image} is not pinned"


def test_images_are_pinned(compose: dict[str, Any]) -> None:
    for name, service in services(compose).items():
        assert "image" in service or "build" in service, name
        if "image" in service:
            assert_pinned(service["image"])
    for keyword, arguments in dockerfile_instructions():
        if keyword == "FROM":
            assert_pinned(arguments.split()[0])


def test_dockerfile_installs_the_locked_project() -> None:
    instructions = dockerfile_instructions()
    assert ("FROM", "python:3.11-slim") in instructions
    copied = {
        source.rstrip("/")
        for keyword, arguments in instructions
        if keyword == "COPY"
        for source in arguments.split()[:-1]
        if not source.startswith("--")
    }
    assert {"pyproject.toml", "uv.lock", "shared", "contracts", "services"} <= copied
    runs = [arguments for keyword, arguments in instructions if keyword == "RUN"]
    assert any("uv sync --frozen" in run for run in runs)
    # The same uv as the Makefile, so both read uv.lock alike.
    make_uv = re.search(r"^UV_VERSION\s*:=\s*(\S+)", (REPO / "Makefile").read_text(), re.M)
    assert make_uv is not None
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert f"UV_VERSION={make_uv[1]}" in text or f"uv=={make_uv[1]}" in text
    users = [arguments for keyword, arguments in instructions if keyword == "USER"]
    assert users, "the image runs as root"
    assert users[-1].split(":")[0] not in {"root", "0"}


# --- observability ------------------------------------------------------------------------


def test_otel_collector_forwards_traces(compose: dict[str, Any]) -> None:
    config = load_yaml(DEPLOY / "otel-collector.yaml")
    for pipeline in config["service"]["pipelines"].values():
        for kind in ("receivers", "processors", "exporters"):
            assert set(pipeline.get(kind, [])) <= set(config.get(kind) or {}), kind
    for exporter in config["exporters"].values():
        host = exporter["endpoint"].split("://")[-1].rsplit(":", 1)[0]
        assert host in services(compose), f"collector exports to unknown host {host}"
    # The services send OTLP over HTTP to the port the collector's receiver listens on.
    http_port = int(config["receivers"]["otlp"]["protocols"]["http"]["endpoint"].rsplit(":")[-1])
    for name, service in platform_containers(compose).items():
        assert urlsplit(environment(service)["OTEL_EXPORTER_OTLP_ENDPOINT"]).port == http_port, name


def test_grafana_is_provisioned(compose: dict[str, Any]) -> None:
    provisioning = DEPLOY / "grafana" / "provisioning"
    sources = [
        source
        for path in sorted((provisioning / "datasources").glob("*.yaml"))
        for source in load_yaml(path)["datasources"]
    ]
    assert {source["type"] for source in sources} >= {"prometheus", "jaeger"}
    for source in sources:
        assert urlsplit(source["url"]).hostname in services(compose), source["name"]

    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    used = {panel["datasource"]["uid"] for panel in dashboard["panels"] if "datasource" in panel}
    assert used <= {source["uid"] for source in sources}

    # The dashboard provider reads the directory compose mounts deploy/grafana/dashboards on.
    mounts = volume_mounts(services(compose)["grafana"])
    mounted_at = {Path(source).as_posix(): target for target, source in mounts.items()}
    providers = [
        provider
        for path in sorted((provisioning / "dashboards").glob("*.yaml"))
        for provider in load_yaml(path)["providers"]
    ]
    assert [provider["options"]["path"] for provider in providers] == [
        mounted_at["deploy/grafana/dashboards"]
    ]
    assert mounted_at["deploy/grafana/provisioning"] == "/etc/grafana/provisioning"


# Sample names Prometheus stores for each metric type (prometheus_client exposition).
SAMPLE_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("_info",),
}


@cache
def exposed_metric_names() -> frozenset[str]:
    """Every sample name a service's /metrics can expose, plus Prometheus's own `up`."""
    from rcm_shared.kafka import make_broker
    from rcm_shared.telemetry import Metrics

    metrics = Metrics("compose-contract")
    # FastStream's Prometheus middleware registers its metrics when the broker is built.
    make_broker("localhost:9092", "compose-contract", None, metrics.registry)
    names = {"up"}
    for family in metrics.registry.collect():
        names.update(family.name + suffix for suffix in SAMPLE_SUFFIXES[family.type])
    return frozenset(names)


PROMQL_NOISE = (
    re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`'),  # string literals
    re.compile(r"\$\{[^}]*\}|\$\w+"),  # Grafana variables: $job, $__rate_interval
    re.compile(r"\{[^}]*\}"),  # label matchers
    re.compile(r"\[[^\]]*\]"),  # ranges and subqueries
    re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)"),  # labels
)
PROMQL_IDENTIFIER = re.compile(r"(?<![\w.:])([a-zA-Z_:][\w:]*)(\s*\()?")
PROMQL_KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan"})


def promql_metric_names(expression: str) -> set[str]:
    """The metric names a PromQL expression selects (not functions, labels or keywords)."""
    for noise in PROMQL_NOISE:
        expression = noise.sub(" ", expression)
    return {
        match[1]
        for match in PROMQL_IDENTIFIER.finditer(expression)
        if not match[2] and match[1].lower() not in PROMQL_KEYWORDS
    }


@pytest.mark.parametrize(
    ("expression", "names"),
    [
        (
            'sum by (le, handler) (rate(a_bucket{job=~"$job", x="y)"}[$__rate_interval]))',
            {"a_bucket"},
        ),
        (
            "histogram_quantile(0.99, sum(rate(a_bucket[5m])) by (le)) / on(job) b",
            {"a_bucket", "b"},
        ),
        (
            'up == bool 1 and on() group_left(x) c offset 5m or label_replace(d, "a", "b", "", "")',
            {"up", "c", "d"},
        ),
        ("1e3 * rcm_x_total", {"rcm_x_total"}),
    ],
)
def test_promql_metric_names(expression: str, names: set[str]) -> None:
    assert promql_metric_names(expression) == names


def dashboard_expressions() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    panels = list(dashboard["panels"])
    for panel in dashboard["panels"]:
        panels += panel.get("panels", [])  # panels inside collapsed rows
    found = [
        (panel["title"], target["expr"])
        for panel in panels
        for target in panel.get("targets", [])
        if "expr" in target
    ]
    for variable in dashboard.get("templating", {}).get("list", []):
        query = variable.get("query")
        query = query.get("query", "") if isinstance(query, dict) else str(query or "")
        # label_values(metric, label): the metric is PromQL, the rest is Grafana's.
        values = re.fullmatch(r"\s*label_values\((.*),\s*\w+\s*\)\s*", query)
        if values:
            found.append((f"${variable['name']}", values[1]))
    return found


def test_dashboard_uses_exposed_metrics() -> None:
    known = exposed_metric_names()
    for title, expression in dashboard_expressions():
        names = promql_metric_names(expression)
        assert names, f"{title}: no metric in {expression!r}"
        assert names <= known, f"{title}: unknown {sorted(names - known)} in {expression!r}"


def test_dashboard_shows_every_platform_metric() -> None:
    """The panels ops engineers need; test_dashboard_uses_exposed_metrics keeps them real."""
    shown = set().union(*(promql_metric_names(expr) for _, expr in dashboard_expressions()))
    wanted = {
        "up",
        "rcm_dead_letters_total",
        "rcm_outbox_backlog",
        "rcm_outbox_published_total",
        "rcm_consumer_lag",
        "faststream_received_messages_total",
        "faststream_published_messages_total",
        "faststream_received_processed_messages_duration_seconds_bucket",
        "faststream_received_processed_messages_exceptions_total",
    }
    assert wanted <= shown, f"missing from the dashboard: {sorted(wanted - shown)}"


if __name__ == "__main__":
    # Child process of test_environment_is_read_by_settings: one JSON line on stdout.
    print(json.dumps(inspect_settings(sys.argv[1:])))
