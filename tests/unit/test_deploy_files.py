"""deploy/ for operators (issue 16 item 3): every file parses, the pieces name each other
consistently (compose secrets, Kubernetes volumes and the kustomization, systemd credentials and
the gateway.yaml that reads them), the shipped gateway.yaml files load as the gateway loads them,
nothing under deploy/ looks like a secret, the image runs as non-root and copies no keys, and
the runbook explains every alarm code."""

from __future__ import annotations

import configparser
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.alarms import ALARMS
from gateway.config.load import load_config
from gateway.console.routes import PROBES

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose" / "compose.yaml"
KUBERNETES = DEPLOY / "kubernetes"
SYSTEMD = DEPLOY / "systemd"
EXAMPLES = DEPLOY / "config"  # partners.yaml, agencies.yaml, routing.yaml

YAML_FILES = sorted(p for p in DEPLOY.rglob("*.y*ml") if p.suffix in (".yaml", ".yml"))
TEXT_FILES = sorted(p for p in DEPLOY.rglob("*") if p.is_file() and not p.is_symlink())
#: Secret-looking text: a private key, a URL with a password, a password or key given a value.
PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")
URL_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://[^\s:/@'\"]+:([^\s@'\"]+)@")
PASSWORD_VALUE = re.compile(
    r"(?i)(?<![a-z])(password|passwd|token|api_key|secret_key|client_secret|default_pass)\w*"
    r"[ \t]*[:=][ \t]*['\"]?"
    r"([^\s'\"#]+)")
#: Values that are not secrets: placeholders, references and the demo's well-known local
#: defaults (RabbitMQ's guest, the demo PostgreSQL's postgres; deploy/demo is for a laptop).
NOT_SECRETS = {"guest", "postgres", "PASSWORD", "USER:PASSWORD", "REPLACE", "%s", "true", "false"}


def documents(path: Path) -> list[Any]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def uncommented(path: Path) -> str:
    """The file's text without its comments (a commented-out example names nothing)."""
    return "\n".join(line.split(" #")[0] for line in
                     path.read_text(errors="replace").splitlines()
                     if not line.lstrip().startswith("#"))


def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def kustomization() -> dict[str, Any]:
    data = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    assert isinstance(data, dict)
    return data


def manifests() -> list[tuple[Path, dict[str, Any]]]:
    return [(path, doc) for path in sorted(KUBERNETES.glob("*.yaml"))
            if path.name != "kustomization.yaml" for doc in documents(path)]


def deployment() -> dict[str, Any]:
    return next(doc for path, doc in manifests() if doc["kind"] == "Deployment")


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_yaml_file_parses(path: Path) -> None:
    assert documents(path), f"{path}: no document"


# -- compose -------------------------------------------------------------------------------


def test_compose_services_use_only_declared_secrets_volumes_and_networks() -> None:
    data = compose()
    services: dict[str, Any] = data["services"]
    declared = {kind: set(data.get(kind) or {}) for kind in ("secrets", "volumes", "networks")}
    used: dict[str, set[str]] = {"secrets": set(), "volumes": set(), "networks": set()}
    for name, service in services.items():
        for secret in service.get("secrets", []):
            secret_name = secret if isinstance(secret, str) else secret["source"]
            assert secret_name in declared["secrets"], f"{name}: undeclared secret {secret}"
            used["secrets"].add(secret_name)
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith((".", "/", "$")):
                assert source in declared["volumes"], f"{name}: undeclared volume {source}"
                used["volumes"].add(source)
            elif source.startswith("."):
                assert (COMPOSE.parent / source).exists(), f"{name}: {source} missing"
        networks = service.get("networks", [])
        for network in networks if isinstance(networks, list) else networks.keys():
            assert network in declared["networks"], f"{name}: undeclared network {network}"
            used["networks"].add(network)
        for needed in service.get("depends_on", {}):
            assert needed in services, f"{name} depends on unknown {needed}"
    assert used == declared, "declared but never used"


def test_compose_secrets_are_files_kept_out_of_git() -> None:
    for name, secret in compose()["secrets"].items():
        assert set(secret) == {"file"}, f"{name}: a file secret, nothing inline"
        assert secret["file"] == f"./secrets/{name}"
    assert "secrets/" in (COMPOSE.parent / ".gitignore").read_text().split()


def test_compose_gateway_reads_every_secret_file_it_is_given() -> None:
    """Every /run/secrets/X that gateway.yaml or the environment names is a secret the
    gateway service has, and every secret it has is read by something."""
    gateway = compose()["services"]["gateway"]
    given = set(gateway["secrets"])
    config_text = uncommented(EXAMPLES / "gateway.yaml")
    named = set(re.findall(r"/run/secrets/([\w.-]+)", config_text))
    named |= {value.removeprefix("/run/secrets/") for key, value in
              gateway["environment"].items() if key.endswith("_FILE")}
    named.add("sftp-host-key")  # the image's entrypoint copies it (deploy/docker)
    assert named == given
    assert gateway["deploy"]["replicas"].startswith("${GATEWAY_REPLICAS")
    assert compose()["services"]["migrate"]["command"] == ["gateway", "db", "upgrade"]
    assert gateway["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}


def test_compose_has_three_clustered_brokers_and_a_primary_with_a_standby() -> None:
    services = compose()["services"]
    brokers = [n for n in services if n.startswith("rabbitmq-")]
    assert brokers == ["rabbitmq-1", "rabbitmq-2", "rabbitmq-3"]
    cluster = (COMPOSE.parent / "rabbitmq" / "cluster.conf").read_text()
    for broker in brokers:
        assert services[broker]["hostname"] == broker
        assert f"= rabbit@{broker}\n" in cluster
        assert "erlang-cookie" in services[broker]["secrets"]
    assert services["postgres-primary"]["environment"]["POSTGRES_ROLE"] == "primary"
    assert services["postgres-standby"]["environment"]["POSTGRES_ROLE"] == "standby"
    haproxy = (COMPOSE.parent / "haproxy" / "haproxy.cfg").read_text()
    assert "bind :22\n" in haproxy and "gateway:2222" in haproxy
    assert "gateway:8080" in haproxy and "gateway:8081" in haproxy


# -- Kubernetes ----------------------------------------------------------------------------


def test_every_manifest_has_api_version_kind_and_name() -> None:
    assert manifests()
    for path, doc in manifests():
        assert doc.get("apiVersion") and doc.get("kind"), path
        assert doc.get("metadata", {}).get("name"), f"{path}: {doc['kind']} without a name"
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == "gateway", f"{path}: {doc['kind']}"


def test_the_kustomization_lists_every_manifest_but_the_secret_template() -> None:
    listed = kustomization()["resources"]
    on_disk = sorted(p.name for p in KUBERNETES.glob("*.yaml")
                     if p.name != "kustomization.yaml" and not p.name.endswith(".template.yaml"))
    assert sorted(listed) == on_disk
    for generator in kustomization()["configMapGenerator"]:
        for file in generator["files"]:
            assert (KUBERNETES / file).is_file(), file
    secrets = [doc for path, doc in manifests() if doc["kind"] == "Secret"]
    assert secrets and all(p.name.endswith(".template.yaml")
                           for p, doc in manifests() if doc["kind"] == "Secret")


def test_the_deployment_mounts_what_it_uses_and_probes_the_console() -> None:
    pod = deployment()["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    containers = pod["initContainers"] + pod["containers"]
    for container in containers:
        assert {m["name"] for m in container["volumeMounts"]} == set(volumes)
        security = container["securityContext"]
        assert security["allowPrivilegeEscalation"] is False
        assert security["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    paths = {r.path for r in PROBES}
    gateway = pod["containers"][0]
    ports = {p["name"] for p in gateway["ports"]}
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        http = gateway[probe]["httpGet"]
        assert http["path"] in paths and http["port"] == "console" in ports
    assert gateway["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert pod["initContainers"][0]["args"] == ["gateway", "db", "upgrade"]
    for service in (doc for _, doc in manifests() if doc["kind"] == "Service"):
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports, f"{service['metadata']['name']}: {port}"
    claims = {doc["metadata"]["name"] for _, doc in manifests()
              if doc["kind"] == "PersistentVolumeClaim"}
    assert volumes["mailboxes"]["persistentVolumeClaim"]["claimName"] in claims


def test_every_secret_file_the_pod_config_names_is_projected() -> None:
    pod = deployment()["spec"]["template"]["spec"]
    sources = next(v for v in pod["volumes"] if v["name"] == "secrets")["projected"]["sources"]
    projected = {item["path"] for s in sources for item in s["secret"]["items"]}
    template = next(doc for _, doc in manifests() if doc["metadata"]["name"] ==
                    "gateway-secrets")
    gateway_keys = {item["key"] for s in sources if s["secret"]["name"] == "gateway-secrets"
                    for item in s["secret"]["items"]}
    assert gateway_keys == set(template["stringData"])
    named = set(re.findall(r"/run/secrets/([\w.-]+)",
                           uncommented(KUBERNETES / "config" / "gateway.yaml")))
    env = {e["value"].removeprefix("/run/secrets/") for e in pod["containers"][0]["env"]
           if e["name"].endswith("_FILE")}
    assert named | env | {"sftp-host-key"} == projected


# -- systemd -------------------------------------------------------------------------------


def unit(name: str) -> dict[str, dict[str, list[str]]]:
    """A unit file as section -> key -> every value (keys such as Environment= repeat)."""
    parser = configparser.RawConfigParser(strict=False, interpolation=None,
                                          dict_type=_Multi, empty_lines_in_values=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((SYSTEMD / name).read_text())
    return {s: {k: v.split("\n") for k, v in parser[s].items()} for s in parser.sections()}


class _Multi(dict[str, Any]):
    """Repeated keys keep every value (joined with newlines, as configparser does for
    continuation lines)."""

    def __setitem__(self, key: str, value: Any) -> None:
        if isinstance(value, list) and key in self:
            self[key].extend(value)
            return
        super().__setitem__(key, value)


def test_the_service_is_hardened_and_runs_as_its_own_user() -> None:
    service = unit("gateway.service")["Service"]
    assert service["User"] == ["gateway"] and service["Group"] == ["gateway"]
    for key, value in (("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"),
                       ("PrivateTmp", "yes"), ("ProtectHome", "yes"), ("KillMode", "mixed")):
        assert service[key] == [value], key
    assert service["CapabilityBoundingSet"] == [""]
    assert service["EnvironmentFile"] == ["/etc/gateway/gateway.env"]
    writable = service["ReadWritePaths"][0].split()
    config = yaml.safe_load((SYSTEMD / "gateway.yaml").read_text())
    for path in (config["sftp"]["host_key"], config["sftp"]["mailboxes"]):
        assert any(path.startswith(w + "/") for w in writable), path
    assert f"/etc/gateway/{Path(config['routing']).parent}" in writable


def test_not_type_notify_since_the_gateway_does_not_notify() -> None:
    service = unit("gateway.service")["Service"]
    notifies = any("NOTIFY_SOCKET" in p.read_text() for p in (ROOT / "gateway").rglob("*.py"))
    assert (service["Type"] == ["notify"]) == notifies


def test_every_credential_the_unit_config_reads_is_loaded() -> None:
    service = unit("gateway.service")["Service"]
    loaded = {entry.split(":", 1)[0] for entry in service["LoadCredential"]}
    config_text = uncommented(SYSTEMD / "gateway.yaml")
    named = set(re.findall(r"/run/credentials/gateway\.service/([\w.-]+)", config_text))
    env = {e.split("=%d/", 1)[1] for e in service["Environment"] if "=%d/" in e}
    assert named | env == loaded
    assert all(e.startswith("GATEWAY_") and e.split("=")[0].endswith("_FILE")
               for e in service["Environment"] if "=%d/" in e)


def test_the_backup_timer_starts_the_backup_service() -> None:
    timer = unit("gateway-backup.timer")
    assert timer["Timer"]["OnCalendar"] and timer["Timer"]["Persistent"] == ["true"]
    backup = unit("gateway-backup.service")["Service"]
    assert backup["Type"] == ["oneshot"] and "pg_dump --format=custom" in backup["ExecStart"][0]


# -- the shipped gateway.yaml files load as the gateway loads them ---------------------------


@pytest.mark.parametrize("config", [EXAMPLES / "gateway.yaml",
                                    KUBERNETES / "config" / "gateway.yaml",
                                    SYSTEMD / "gateway.yaml"],
                         ids=lambda p: str(p.relative_to(DEPLOY)))
def test_shipped_configuration_loads_with_urls_from_secret_files(
        config: Path, tmp_path: Path) -> None:
    text = config.read_text()
    shutil.copy(config, tmp_path / "gateway.yaml")
    for name in ("partners.yaml", "agencies.yaml"):
        shutil.copy(config.parent / name if (config.parent / name).exists()
                    else EXAMPLES / name, tmp_path / name)
    routing = tmp_path / yaml.safe_load(text)["routing"]
    routing.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(EXAMPLES / "routing.yaml", routing)
    (tmp_path / "database-url").write_text("postgresql://gateway:pw@db:5432/gateway\n")
    (tmp_path / "amqp-url").write_text("amqp://gateway:pw@mq:5672/\n")
    loaded = load_config(tmp_path / "gateway.yaml", environ={
        "GATEWAY_DATABASE_URL_FILE": str(tmp_path / "database-url"),
        "GATEWAY_AMQP_URL_FILE": str(tmp_path / "amqp-url")})
    assert loaded.database_url == "postgresql://gateway:pw@db:5432/gateway"
    assert loaded.amqp_url == "amqp://gateway:pw@mq:5672/"
    assert loaded.settings.console is not None and loaded.settings.as2 is not None
    # The placeholders in the file hold no password: the real URLs are the secrets.
    assert URL_PASSWORD.search(text) is None


# -- secrets and the image -----------------------------------------------------------------


@pytest.mark.parametrize("path", TEXT_FILES, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_nothing_under_deploy_looks_like_a_secret(path: Path) -> None:
    text = path.read_text(errors="replace")
    assert PRIVATE_KEY.search(text) is None, f"{path}: a private key"
    for match in URL_PASSWORD.finditer(text):
        password = match.group(1)
        assert password in NOT_SECRETS or password.startswith(("$", "%", "<", "PASSWORD")), \
            f"{path}: a URL with a password: {match.group(0)}"
    for match in PASSWORD_VALUE.finditer(uncommented(path) if path.suffix != ".md" else ""):
        value = match.group(2).rstrip(",;)")
        assert (value in NOT_SECRETS or value.startswith(("$", "/", ".", "%", "REPLACE", "{"))
                or value.endswith(("_file", "-password", ".password"))
                or match.group(1).lower() in value.lower()), \
            f"{path}: {match.group(0)!r} looks like a secret"


def test_the_secret_checks_catch_secrets() -> None:
    """The patterns above are not vacuous."""
    assert PRIVATE_KEY.search("-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl")
    assert URL_PASSWORD.search("url: amqp://gateway:Xk3f9q@mq:5672/")
    assert PASSWORD_VALUE.search("default_pass = Xk3f9q")
    assert PASSWORD_VALUE.search('POSTGRES_PASSWORD: "Xk3f9q"')


def dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) of deploy/docker/Dockerfile, continuation lines joined."""
    text = (DEPLOY / "docker" / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1])
            for line in lines if line and not line.startswith("#")]


def test_the_image_runs_as_non_root_and_copies_no_keys_or_secrets() -> None:
    instructions = dockerfile()
    assert instructions[0] == ("FROM", "python:3.11-slim")
    users = [args for op, args in instructions if op == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    for op, args in instructions:
        if op in ("COPY", "ADD"):
            sources = [a for a in args.split() if not a.startswith("--")][:-1]
            assert op == "COPY", "ADD may fetch URLs and unpack archives: COPY only"
            for source in sources:
                assert not re.search(r"(?i)(key|pem|secret|password|var/|credential)",
                                     source.replace("entrypoint.sh", "")), source
        if op in ("ENV", "ARG"):
            assert not re.search(r"(?i)(password|secret|token)", args), args
    ignored = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    assert ignored[0] == "**"  # everything out, then the code back in
    taken_back = [line for line in ignored if line.startswith("!")]
    assert not [line for line in taken_back if re.search(r"(?i)(var|key|secret|pem)", line)]


def test_the_entrypoint_copies_the_host_key_private_and_runs_the_command(
        tmp_path: Path) -> None:
    secret = tmp_path / "secrets" / "sftp-host-key"
    secret.parent.mkdir()
    secret.write_text("the key\n")
    secret.chmod(0o444)  # as a Secret volume or a compose bind mount gives it
    target = tmp_path / "keys" / "ssh_host_ed25519_key"
    done = subprocess.run(
        [str(DEPLOY / "docker" / "entrypoint.sh"), "sh", "-c", "echo ran $0", "it"],
        env={**os.environ, "GATEWAY_HOST_KEY_SECRET": str(secret),
             "GATEWAY_HOST_KEY": str(target)},
        capture_output=True, text=True, check=True, timeout=10)
    assert done.stdout == "ran it\n"
    assert target.read_text() == "the key\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    secret.unlink()  # without the secret: nothing copied, the command still runs
    target.unlink()
    subprocess.run([str(DEPLOY / "docker" / "entrypoint.sh"), "true"], env={
        **os.environ, "GATEWAY_HOST_KEY_SECRET": str(secret),
        "GATEWAY_HOST_KEY": str(target)}, check=True, timeout=10)
    assert not target.exists()


# -- the runbook ---------------------------------------------------------------------------


def test_the_runbook_explains_every_alarm_and_is_linked_from_the_readme() -> None:
    runbook = (ROOT / "docs" / "runbook.md").read_text()
    rows = dict(re.findall(r"^\| `?(GW-A\d{3})`? \|(.+)$", runbook, flags=re.MULTILINE))
    assert set(rows) == {alarm.code for alarm in ALARMS}
    for alarm in ALARMS:
        assert any(event in rows[alarm.code] for event in alarm.events), alarm.code
    assert "docs/runbook.md" in (ROOT / "README.md").read_text()
    for heading in ("Backup and restore", "Key and certificate rotation", "Scaling out and in",
                    "Upgrade with zero message loss", "Alarms"):
        assert re.search(rf"^## {heading}", runbook, flags=re.MULTILINE), heading
