"""Load, resolve and check scenario files: YAML -> ``Scenario``, or one-line ``ScenarioError``.

A what-if file names an organisation file and a remote-world file (paths relative to
the what-if file, or the same content inline), overrides only what differs, and adds
traffic and run settings. Errors in a referenced file name that file; errors caused by
an override name the what-if file and the override.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sim.errors import NO_VALUE, ScenarioError
from sim.scenario.calendar import CHANGEABLE_ROOTS, absolute_path, changed_document
from sim.scenario.model import Organisation, Remotes, RunSettings, Scenario, Traffic
from sim.scenario.overrides import OverrideError, set_path
from sim.vocabulary import VirtualServerRef, is_domain

ModelT = TypeVar("ModelT", bound=BaseModel)

_ABSOLUTE_ROOTS = ("organisation", "remotes", "traffic", "run", "name", "description", "changes")


class ScenarioFile(BaseModel):
    """The what-if file as written, before its references are resolved."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    topology: str | dict[str, Any]
    remotes: str | dict[str, Any]
    overrides: dict[str, Any] = Field(default_factory=dict)
    traffic: dict[str, Any] = Field(default_factory=dict)
    run: dict[str, Any] = Field(default_factory=dict)
    changes: list[Any] = Field(default_factory=list)


def read_yaml(path: Path) -> Any:
    """Parse one YAML file; a missing or malformed file is a ``ScenarioError``."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        where = f"byte {exc.start}"
        raise ScenarioError(path, where, NO_VALUE, "not UTF-8 text (save the file as UTF-8)") from None
    except FileNotFoundError:
        raise ScenarioError(path, "", NO_VALUE, "file not found") from None
    except OSError as exc:
        raise ScenarioError(path, "", NO_VALUE, f"cannot read: {exc.strerror}") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1} column {mark.column + 1}" if mark else "yaml"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ScenarioError(path, where, NO_VALUE, f"not valid YAML: {problem}") from exc


def load_scenario(path: str | Path, *, seed: int | None = None) -> Scenario:
    """Load the what-if file at ``path`` with its organisation and remote world."""
    path = Path(path)
    return scenario_from_raw(read_yaml(path), path, seed=seed)


def scenario_from_raw(
    raw: Any, path: Path, *, seed: int | None = None, base: Path | None = None, error_file: Path | None = None
) -> Scenario:
    """Resolve a what-if document (as read from ``path``) into a ``Scenario``.

    ``base`` is the folder its relative references start from (default ``path``'s);
    ``error_file`` names the file that errors blame (default ``path``): an experiment
    that varies a scenario blames itself for the variants it wrote.
    """
    blame = error_file or path
    if not isinstance(raw, dict):
        raise ScenarioError(blame, "", _kind(raw), "a scenario file must be a mapping (name, topology, remotes, ...)")
    spec = validated(ScenarioFile, raw, blame)
    anchor = (base or path.parent) / path.name
    organisation, organisation_file = _referenced(spec.topology, anchor, "topology", Organisation, blame)
    remotes, remotes_file = _referenced(spec.remotes, anchor, "remotes", Remotes, blame)
    document: dict[str, Any] = {
        "name": spec.name,
        "description": spec.description,
        "organisation": organisation,
        "remotes": remotes,
        "traffic": _flows_as_lists(copy.deepcopy(spec.traffic)),
        "run": copy.deepcopy(spec.run),
        "changes": copy.deepcopy(spec.changes),
        "source": str(anchor),
    }
    if seed is not None:
        document["run"]["seed"] = seed
    touched = apply_overrides(document, spec.overrides, blame)
    scenario = validated(Scenario, document, blame, touched)
    try:
        check_references(scenario, blame)
    except ScenarioError as exc:
        raise _attribute(exc, {"organisation": organisation_file, "remotes": remotes_file}, touched) from None
    check_changes(scenario, blame)
    return scenario


def check_changes(scenario: Scenario, file: Path | str) -> None:
    """Each change of the calendar, applied in turn, must leave a valid scenario."""
    previous = 0.0
    for i, change in enumerate(scenario.changes):
        field = f"changes[{i}]"
        if change.at < previous:
            raise ScenarioError(file, f"{field}.at", change.at, "changes must be listed in time order")
        previous = change.at
        for key, value in change.set.items():
            if absolute_path(key).split(".", 1)[0] not in CHANGEABLE_ROOTS:
                raise ScenarioError(
                    file,
                    f"{field}.set.{key}",
                    value,
                    "a change sets organisation or remotes fields only (accepted: "
                    "organisation.*, remotes.*, or a path relative to the organisation)",
                )
        try:
            changed = Scenario.model_validate(changed_document(scenario, i + 1))
            check_references(changed, file)
        except OverrideError as exc:
            raise ScenarioError(file, f"{field}.set", NO_VALUE, str(exc)) from None
        except ValidationError as exc:
            error = as_scenario_error(exc, Scenario, file, {}, "")
            raise ScenarioError(file, f"{field}.set: {error.field}", error.value, error.problem) from None
        except ScenarioError as exc:
            raise ScenarioError(file, f"{field}.set: {exc.field}", exc.value, exc.problem) from None


def _flows_as_lists(traffic: dict[str, Any]) -> dict[str, Any]:
    """One flow may be written as a mapping; make it a list so that overrides can say
    ``traffic.outbound.0.rate_per_hour`` whichever way the file wrote it."""
    for key in ("outbound", "inbound"):
        if isinstance(traffic.get(key), dict):
            traffic[key] = [traffic[key]]
    return traffic


def _attribute(
    exc: ScenarioError, origins: dict[str, str | None], touched: dict[tuple[str, ...], str]
) -> ScenarioError:
    """Name the file a cross-reference error comes from: the referenced file, unless an
    override rewrote that section (then the what-if file, where the override is)."""
    root, _, rest = exc.field.partition(".")
    origin = origins.get(root)
    section = rest.split("[", 1)[0].split(".", 1)[0]
    overridden = any(path[:2] == (root, section) for path in touched)
    if origin is None or overridden:
        return exc
    return ScenarioError(origin, rest, exc.value, exc.problem)


def apply_overrides(
    document: dict[str, Any], overrides: dict[str, Any], file: Path | str
) -> dict[tuple[str, ...], str]:
    """Apply dotted overrides in place; return the touched paths (for error messages)."""
    touched: dict[tuple[str, ...], str] = {}
    for key, value in overrides.items():
        absolute = key if key.split(".", 1)[0] in _ABSOLUTE_ROOTS else f"organisation.{key}"
        try:
            set_path(document, absolute, copy.deepcopy(value))
        except OverrideError as exc:
            raise ScenarioError(file, f"overrides.{key}", value, str(exc)) from None
        touched[tuple(absolute.split("."))] = key
    return touched


def _referenced(
    ref: str | dict[str, Any], scenario_path: Path, field: str, model: type[BaseModel], blame: Path
) -> tuple[dict[str, Any], str | None]:
    """Read (if a path) and validate a referenced file; return its raw content and its name."""
    if isinstance(ref, dict):
        validated(model, ref, blame, prefix=field)
        return copy.deepcopy(ref), None
    _check_file_name(blame, field, ref)
    try:
        target = (scenario_path.parent / ref).resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop raises RuntimeError
        raise ScenarioError(blame, field, ref, f"cannot follow the path: {exc}") from None
    if not target.exists():
        raise ScenarioError(blame, field, ref, f"file not found (looked for {target})")
    raw = read_yaml(target)
    if not isinstance(raw, dict):
        raise ScenarioError(target, "", _kind(raw), f"a {field} file must be a mapping")
    validated(model, raw, _display(target))
    return raw, _display(target)


def validated(
    model: type[ModelT],
    raw: dict[str, Any],
    file: Path | str,
    touched: dict[tuple[str, ...], str] | None = None,
    prefix: str = "",
) -> ModelT:
    """``raw`` as ``model``, or the one-line ``ScenarioError`` a user reads: the one
    translation from pydantic's errors to the user's line, for every file tlssim reads
    (what-ifs, experiments, organisations it imports into)."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise as_scenario_error(exc, model, file, touched or {}, prefix) from None


_BRANCH_TAGS = frozenset({"int", "float", "str", "bool", "list", "dict", "none"})


def pick_error(exc: ValidationError) -> dict[str, Any]:
    """The error to tell the user. For a value that may take several forms (a number or
    a mapping, say), pydantic reports every form's error: prefer the one of the form the
    user wrote (a mapping's own field error over "should be a valid integer"), and drop
    the form's tag from the location."""
    errors = list(exc.errors())
    untagged = [e for e in errors if not any(_branch_tag(p) for p in e["loc"])]
    chosen: dict[str, Any] = dict(untagged[0] if untagged else errors[0])
    loc: tuple[Any, ...] = tuple(chosen["loc"])
    chosen["loc"] = tuple(p for p in loc if not (_branch_tag(p) or (isinstance(p, str) and p in _model_names())))
    return chosen


def _branch_tag(part: Any) -> bool:
    """A union branch's tag in a location: ``int``, or a generic one like ``dict[str,int]``."""
    return isinstance(part, str) and part.split("[", 1)[0] in _BRANCH_TAGS


def _model_names() -> set[str]:
    """Names of the pydantic models: a union's branch shows in a location as its model name."""
    names: set[str] = set()
    pending: list[type[Any]] = [BaseModel]
    while pending:
        subclasses: list[type[Any]] = pending.pop().__subclasses__()
        for sub in subclasses:
            names.add(sub.__name__)
            pending.append(sub)
    return names


def as_scenario_error(
    exc: ValidationError,
    model: type[BaseModel],
    file: Path | str,
    touched: dict[tuple[str, ...], str] | None = None,
    prefix: str = "",
) -> ScenarioError:
    touched = touched or {}
    error = pick_error(exc)
    loc = tuple(error["loc"])
    field = _format_loc(loc)
    for path, key in touched.items():
        if tuple(str(p) for p in loc[: len(path)]) == path or _names_path(loc, path):
            field = f"overrides.{key}"
            break
    else:
        if prefix:
            field = f"{prefix}.{field}" if field else prefix
    message = str(error["msg"]).removeprefix("Value error, ")
    value = error.get("input", NO_VALUE)
    if error["type"] == "missing":
        value = NO_VALUE
        message = "required field is missing"
    elif error["type"] == "extra_forbidden":
        allowed = _fields_at(model, loc[:-1])
        message = "unknown field" + (f" (accepted: {', '.join(allowed)})" if allowed else "")
    elif isinstance(value, (dict, list)):
        value = _kind(value)
    elif isinstance(value, bool) and error["type"] in ("enum", "literal_error", "string_type"):
        # YAML 1.1 reads unquoted off/no/false as false and on/yes/true as true.
        word = "off" if value is False else "on"
        message += f" (YAML read an unquoted word as {str(value).lower()}: quote it, e.g. '{word}')"
    return ScenarioError(_display(file), field, value, message)


def _names_path(loc: tuple[Any, ...], path: tuple[str, ...]) -> bool:
    # Overrides address list entries by name while pydantic reports indices; treat an
    # error at the overridden field's leaf name, or at a section the override created
    # (an unknown field there), as caused by the override.
    return bool(loc) and bool(path) and str(loc[-1]) in path


def _format_loc(loc: Iterable[Any]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The accepted field names of the model found at ``loc`` inside ``model``."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        info = current.model_fields.get(str(part))
        if info is None:
            return []
        current = _inner_model(info.annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [info.alias or name for name, info in current.model_fields.items()]
    return []


def _inner_model(annotation: Any) -> Any:
    origin = get_origin(annotation)
    if origin in (list, tuple, Union) or (origin is not None and origin is not Literal):
        for arg in get_args(annotation):
            found = _inner_model(arg)
            if isinstance(found, type) and issubclass(found, BaseModel):
                return found
        return None
    return annotation


def _kind(value: Any) -> str:
    return {dict: "<mapping>", list: "<list>", type(None): "<empty>"}.get(type(value), repr(value))


def _display(path: Path | str) -> str:
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def check_references(scenario: Scenario, file: Path | str) -> None:
    """Cross-field checks pydantic cannot do alone: every name must point at something."""
    org, remotes = scenario.organisation, scenario.remotes
    _unique(file, "organisation.routing_groups", [g.name for g in org.routing_groups])
    _unique(file, "organisation.servers", [s.name for s in org.servers])
    _unique(file, "organisation.connectors", [c.name for c in org.connectors])
    _unique(file, "remotes.domains", [d.name for d in remotes.domains])
    groups = {g.name for g in org.routing_groups}
    relays = {h.host for h in remotes.hosts}
    for i, link in enumerate(org.routing_group_connectors):
        for end in link.between:
            _known(file, f"organisation.routing_group_connectors[{i}].between", end, groups, "routing group")
    virtual_servers: set[str] = set()
    for i, server in enumerate(org.servers):
        _known(file, f"organisation.servers[{i}].routing_group", server.routing_group, groups, "routing group")
        _unique(file, f"organisation.servers[{i}].virtual_servers", [v.name for v in server.virtual_servers])
        for j, vs in enumerate(server.virtual_servers):
            virtual_servers.add(str(VirtualServerRef(server.name, vs.name)))
            field = f"organisation.servers[{i}].virtual_servers[{j}]"
            if vs.certificate is not None and vs.certificate.file is not None:
                _check_certificate_file(file, f"{field}.certificate.file", vs.certificate.file, scenario.source)
            if vs.smart_host is not None:
                _known(file, f"{field}.smart_host", vs.smart_host, relays, "host in remotes.hosts")
    for i, connector in enumerate(org.connectors):
        for j, source in enumerate(connector.source):
            _known(file, f"organisation.connectors[{i}].source[{j}]", source, virtual_servers, "virtual server")
        for j, host in enumerate(connector.smart_hosts):
            _known(file, f"organisation.connectors[{i}].smart_hosts[{j}]", host, relays, "host in remotes.hosts")
    if org.publishes is not None:
        for i, mx in enumerate(org.publishes.mx):
            _known(
                file,
                f"organisation.publishes.mx[{i}].virtual_server",
                mx.virtual_server,
                virtual_servers,
                "virtual server",
            )
        names = {mx.host for mx in org.publishes.mx}
        for host in org.publishes.tlsa:
            _known(file, f"organisation.publishes.tlsa.{host}", host, names, "MX host in publishes.mx")
    servers = {s.name for s in org.servers}
    domains = {d.name for d in remotes.domains}
    for i, flow in enumerate(scenario.traffic.outbound):
        if flow.from_server is not None:
            _known(file, f"traffic.outbound[{i}].from", flow.from_server, servers, "server")
        if flow.population_weight > 0 and remotes.population is None:
            raise ScenarioError(
                file,
                f"traffic.outbound[{i}].population_weight",
                flow.population_weight,
                "the remote world has no population (add one to the remotes file)",
            )
        for domain in flow.domains:
            if domain not in domains:
                raise ScenarioError(
                    file,
                    f"traffic.outbound[{i}].domains.{domain}",
                    domain,
                    "no such domain in the remote world (add it to the remotes file)",
                )
    _check_inbound(scenario, file, virtual_servers)


def _known(file: Path | str, field: str, name: str, names: set[str], kind: str) -> None:
    """``name`` must be one of ``names``; otherwise say so, listing what is accepted."""
    if name not in names:
        accepted = ", ".join(sorted(names)) or "none defined"
        raise ScenarioError(file, field, name, f"no such {kind} (accepted: {accepted})")


def _check_inbound(scenario: Scenario, file: Path | str, virtual_servers: set[str]) -> None:
    senders: set[str] = set()
    for i, flow in enumerate(scenario.traffic.inbound):
        if flow.to is not None:
            _known(file, f"traffic.inbound[{i}].to", flow.to, virtual_servers, "virtual server")
        published = scenario.organisation.publishes
        our_mx = {mx.host for mx in published.mx} if published is not None and flow.to is None else set()
        for j, failure in enumerate(flow.observed_failures):
            _known(
                file, f"traffic.inbound[{i}].observed_failures[{j}].mx", failure.mx, our_mx, "MX host in publishes.mx"
            )
        if not is_domain(flow.from_domain):
            raise ScenarioError(
                file,
                f"traffic.inbound[{i}].from",
                flow.from_domain,
                "not a domain name (accepted: a DNS name such as example.com)",
            )
        if flow.from_domain in senders:
            raise ScenarioError(
                file,
                f"traffic.inbound[{i}].from",
                flow.from_domain,
                "duplicate sending domain (give each sender one flow)",
            )
        senders.add(flow.from_domain)


def _check_file_name(file: Path | str, field: str, name: str) -> None:
    """A referenced file's name must be one a file system can hold: no NUL byte, no part
    longer than 255 bytes, at most 4096 bytes in all (Linux NAME_MAX, PATH_MAX)."""
    if "\0" in name:
        raise ScenarioError(file, field, name.replace("\0", "\\0")[:80], "a file name cannot hold a NUL byte")
    if len(name.encode()) > 4096 or any(len(part.encode()) > 255 for part in name.split("/")):
        raise ScenarioError(
            file, field, f"{name[:24]}... ({len(name)} characters)", "file name too long (at most 255 bytes a part)"
        )


def _check_certificate_file(file: Path | str, field: str, name: str, source: str) -> None:
    """A certificate file must exist and hold a certificate (paths relative to the what-if file)."""
    _check_file_name(file, field, name)
    path = Path(source).parent / name
    if not path.is_file():
        raise ScenarioError(file, field, name, f"file not found (looked for {path})")
    from sim.pki.certs import CertificateFileError, load_certificate  # cryptography: only when a file is named

    try:
        load_certificate(path)
    except CertificateFileError as exc:
        raise ScenarioError(file, field, name, str(exc)) from None


def _unique(file: Path | str, field: str, names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ScenarioError(file, field, name, "duplicate name (names must be unique)")
        seen.add(name)


def scenario_hash(scenario: Scenario) -> str:
    """A stable hash of everything that shapes a run (the file path excluded)."""
    payload = scenario.model_dump(mode="json", exclude={"source"}, by_alias=True)
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


SCHEMA_KINDS = ("what-if", "organisation", "remotes", "experiment")


def file_schema(kind: str, experiment: type[BaseModel] | None = None) -> dict[str, Any]:
    """A self-contained JSON Schema (draft 2020-12) of one file kind, for editors: every
    ``$ref`` points into its own ``$defs``, and the root rejects unknown keys."""
    from sim.scenario.model import Change

    defs: dict[str, Any] = {}

    def lift(model: type[BaseModel]) -> dict[str, Any]:
        schema = model.model_json_schema(ref_template="#/$defs/{model}")
        defs.update(schema.pop("$defs", {}))
        defs[model.__name__] = schema
        return {"$ref": f"#/$defs/{model.__name__}"}

    if kind == "organisation":
        root = Organisation.model_json_schema(ref_template="#/$defs/{model}")
    elif kind == "remotes":
        root = Remotes.model_json_schema(ref_template="#/$defs/{model}")
    elif kind == "experiment" and experiment is not None:
        root = experiment.model_json_schema(ref_template="#/$defs/{model}")
    elif kind == "what-if":
        root = {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "description": {"type": "string"},
                "topology": {"anyOf": [{"type": "string"}, lift(Organisation)]},
                "remotes": {"anyOf": [{"type": "string"}, lift(Remotes)]},
                "overrides": {"type": "object"},
                "traffic": lift(Traffic),
                "run": lift(RunSettings),
                "changes": {"type": "array", "items": lift(Change)},
            },
            "required": ["name", "topology", "remotes"],
        }
    else:
        raise ValueError(f"unknown kind {kind!r} (accepted: {', '.join(SCHEMA_KINDS)})")
    defs.update(root.pop("$defs", {}))
    if "Traffic" in defs:  # one flow may be written as a mapping instead of a list
        for key in ("outbound", "inbound"):
            listed = defs["Traffic"]["properties"][key]
            defs["Traffic"]["properties"][key] = {"anyOf": [listed, listed["items"]], "description": "one or a list"}
    root["additionalProperties"] = False
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": f"tlssim {kind} file", **root,
            "$defs": defs}  # fmt: skip


def scenario_json_schema() -> dict[str, Any]:
    """JSON Schema of the what-if file, the organisation file and the remote-world file."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "tlssim scenario formats",
        "$defs": {
            "scenario": ScenarioFile.model_json_schema(),
            "organisation": Organisation.model_json_schema(),
            "remotes": Remotes.model_json_schema(),
            "traffic": Traffic.model_json_schema(),
            "run": RunSettings.model_json_schema(),
        },
    }
