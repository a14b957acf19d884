"""One validated configuration for a process, read from defaults, a YAML file, the environment and flags.

The settings dataclasses of the library (``ServerSettings``, ``SessionSettings``, ``Limits`` ...)
stay the one place where a setting's name, type, default, meaning and validation are written. A
:class:`Section` is derived from one of them (the fields holding plain values: numbers, strings,
booleans, lists of strings; objects such as interceptors or TLS settings are not configuration),
and :func:`load` reads the values of every section, in this order, each overriding the one before:

1. the defaults (the dataclass's own, or a command's own default where it differs);
2. a YAML file (``--config FILE``, else the file named by ``A2A_CONFIG``): one mapping per section;
3. environment variables ``A2A_<SECTION>__<KEY>`` (upper or lower case; a list as JSON, ``null``
   for None), e.g. ``A2A_SESSION__HEARTBEAT_INTERVAL=5``; ``A2A_DEBUG=1`` is
   ``A2A_OBSERVABILITY__DEBUG``;
4. command-line flags given explicitly.

Every value remembers where it came from (:attr:`Configuration.sources`), and every refusal names
the key and that source: an unknown key (with the nearest known one), a value of the wrong type, a
value the dataclass refuses, a file that cannot be read or parsed (with its line).
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import functools
import inspect
import json
import math
import os
import re
import reprlib
import textwrap
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, Union, get_args, get_origin, get_type_hints

import yaml
from pydantic import AllowInfNan, ConfigDict, Field, TypeAdapter, ValidationError, create_model
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict

from a2a_grpc.security.redact import scrub_urls

__all__ = [
    "CONFIG_ENV",
    "DEBUG_ENV",
    "DEFAULT",
    "ENV_DELIMITER",
    "ENV_PREFIX",
    "MAX_FILE_BYTES",
    "OTHER_ENV",
    "ConfigError",
    "Configuration",
    "Key",
    "Section",
    "describe",
    "library_sections",
    "load",
]

ENV_PREFIX = "A2A_"
ENV_DELIMITER = "__"
"""Between the section and the key of an environment variable: ``A2A_SERVER__MAX_CONCURRENT_STREAMS``
(a single ``_`` would be ambiguous, since keys have underscores of their own)."""
CONFIG_ENV = "A2A_CONFIG"
"""The configuration file, when no ``--config`` is given."""
DEBUG_ENV = "A2A_DEBUG"
"""Short for ``A2A_OBSERVABILITY__DEBUG``."""
OTHER_ENV = frozenset({"A2A_GRPC_API_KEY", "A2A_GRPC_BEARER_TOKEN", "A2A_GRPC_STORE_KEY", "A2A_GRPC_WORKER"})
"""``A2A_`` variables that are no configuration keys but are read elsewhere (credentials, the
store's key, the role ``serve --workers`` gives each worker): never refused, never shown."""
MAX_FILE_BYTES = 1024 * 1024
"""A configuration file larger than this is refused unread: a few hundred keys take a few KiB."""
DEFAULT = "default"
"""The source of a value nobody set."""

_SCALARS = (bool, int, float, str)
_SHOWN = reprlib.Repr()  # a hostile value (a deep or huge structure) is shown in a few words
_SHOWN.maxlevel, _SHOWN.maxstring, _SHOWN.maxother, _SHOWN.maxlist, _SHOWN.maxdict = 2, 60, 60, 4, 4


class ConfigError(ValueError):
    """A configuration refused: the message names the key and where its value came from (a URL in
    it without the user and password it may hold)."""

    def __init__(self, message: str) -> None:
        super().__init__(scrub_urls(message))


# -- sections, derived from the settings dataclasses -------------------------------------------------


@functools.cache
def _attribute_docs(cls: type) -> dict[str, str]:
    """The docstrings written under the fields of a dataclass (the string after each ``name: type``),
    read from its source; empty when the source is not available."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError, SyntaxError):
        return {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    docs: dict[str, str] = {}
    for node, after in zip(body, [*body[1:], None], strict=True):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            docs[node.target.id] = " ".join(inspect.cleandoc(after.value.value).split())
    return docs


def _plain(hint: Any) -> bool:
    """Whether a field of this type is configuration: a number, string, boolean, one of some
    strings, a tuple of strings, or one of these or None; or a whole number or one of some
    strings (``int | Literal["auto"]``)."""
    origin, args = get_origin(hint), get_args(hint)
    if hint in _SCALARS:
        return True
    if origin is Literal:
        return all(isinstance(a, str) for a in args)
    if origin is tuple:
        return len(args) == 2 and args[0] is str and args[1] is Ellipsis
    if origin in (Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            return len(args) == 2 and _plain(rest[0])
        return len(args) == 2 and int in args and any(get_origin(a) is Literal and _plain(a) for a in args)
    return False


def _optional(hint: Any) -> bool:
    return get_origin(hint) in (Union, types.UnionType) and type(None) in get_args(hint)


def _is_list(hint: Any) -> bool:
    return get_origin(hint) is tuple or any(get_origin(a) is tuple for a in get_args(hint))


def _model_type(hint: Any) -> Any:
    """The type pydantic checks a value against: floats must be finite."""
    if hint is float:
        return Annotated[float, AllowInfNan(False)]
    if _optional(hint):
        (inner,) = [a for a in get_args(hint) if a is not type(None)]
        return _model_type(inner) | None
    return hint


def _describe(hint: Any) -> str:
    """A type, as a message says what was expected."""
    if _optional(hint):
        (inner,) = [a for a in get_args(hint) if a is not type(None)]
        return f"{_describe(inner)} or null"
    if get_origin(hint) is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(hint))
    if get_origin(hint) in (Union, types.UnionType):  # int | Literal[...]
        return " or ".join(_describe(a) for a in get_args(hint))
    if get_origin(hint) is tuple:
        return "a list of strings"
    return {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}[hint]


@functools.cache
def _adapters(hint: Any) -> tuple[TypeAdapter[Any], TypeAdapter[Any]]:
    """The checks of a value of type ``hint``: converting (strings) and strict (a YAML file's)."""
    model = _model_type(hint)
    # In a file a list is a list (strict mode would want a tuple for a tuple field).
    strict: Any = (list[str] | None if _optional(hint) else list[str]) if _is_list(hint) else model
    return TypeAdapter(model), TypeAdapter(strict)


@dataclass(frozen=True, slots=True)
class Key:
    """One configuration key: a field of a settings dataclass."""

    section: str
    name: str
    hint: Any
    """The field's type, as the dataclass declares it."""
    default: Any
    doc: str

    @property
    def path(self) -> str:
        return f"{self.section}.{self.name}"

    @property
    def env(self) -> str:
        return f"{ENV_PREFIX}{self.section}{ENV_DELIMITER}{self.name}".upper()

    @property
    def expected(self) -> str:
        return _describe(self.hint)

    def check(self, value: Any, *, strict: bool) -> Any:
        """``value`` as this key's type, or ValueError. ``strict`` (a YAML file, whose values are
        typed): no conversion (``"8"`` is no number, ``1`` no boolean); else strings are read
        (``"8"``, ``"true"``), as the environment and flags give them."""
        lax, exact = _adapters(self.hint)
        try:
            checked = (exact if strict else lax).validate_python(value, strict=strict)
        except ValidationError:
            raise ValueError(f"expected {self.expected}, got {_SHOWN.repr(value)}") from None
        return tuple(checked) if isinstance(checked, list) else checked


@dataclass(frozen=True, slots=True)
class Section:
    """A part of the configuration that makes one settings object (its dataclass ``target``)."""

    name: str
    target: type
    keys: tuple[Key, ...]
    doc: str = ""

    @classmethod
    def of(
        cls,
        name: str,
        target: type,
        *,
        only: Iterable[str] | None = None,
        skip: Iterable[str] = (),
        defaults: Mapping[str, Any] | None = None,
        doc: str | None = None,
    ) -> Section:
        """The section of dataclass ``target``: its fields of plain types (all of them, or ``only``
        these), less ``skip``; ``defaults`` replaces the dataclass's defaults of some (a command's
        own)."""
        hints = get_type_hints(target)
        docs = _attribute_docs(target)
        chosen = None if only is None else list(only)
        fields = {f.name: f for f in dataclasses.fields(target)}
        names = chosen if chosen is not None else list(fields)
        overrides = dict(defaults or {})
        keys = []
        for field_name in names:
            if field_name in skip or not _plain(hints[field_name]):
                if chosen is not None:
                    raise TypeError(f"{target.__name__}.{field_name} is not a plain configuration value")
                continue
            found = fields[field_name]
            if field_name in overrides:
                default = overrides.pop(field_name)
            elif found.default is not dataclasses.MISSING:
                default = found.default
            elif found.default_factory is not dataclasses.MISSING:
                default = found.default_factory()
            else:
                raise TypeError(f"{target.__name__}.{field_name} has no default")
            keys.append(Key(name, field_name, hints[field_name], default, docs.get(field_name, "")))
        if overrides:
            raise TypeError(f"defaults for fields that are not keys of {name}: {sorted(overrides)}")
        first_line = (inspect.getdoc(target) or "").strip().split("\n\n")[0]
        return cls(name, target, tuple(keys), " ".join(first_line.split()) if doc is None else doc)

    def key(self, name: str) -> Key | None:
        return next((k for k in self.keys if k.name == name), None)


# -- the model (pydantic-settings) -----------------------------------------------------------------


class _Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_DELIMITER,
        env_parse_none_str="null",
        case_sensitive=False,
        extra="forbid",
    )


@functools.cache
def _model(sections: tuple[Section, ...]) -> type[BaseSettings]:
    """The pydantic-settings model of these sections: one nested model per section, one field per key."""
    members: dict[str, Any] = {}
    for section in sections:
        fields: dict[str, Any] = {
            k.name: (_model_type(k.hint), Field(default=k.default, description=k.doc)) for k in section.keys
        }
        sub = create_model(
            f"{section.name}_settings", __config__=ConfigDict(extra="forbid", frozen=True), **fields
        )
        members[section.name] = (sub, Field(default_factory=sub, description=section.doc))
    made: type[BaseSettings] = create_model("A2ASettings", __base__=_Settings, **members)
    return made


# -- the configuration -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Configuration:
    """The effective value of every key, where each came from, and the settings objects they make."""

    sections: tuple[Section, ...]
    values: Mapping[str, Any]
    """By ``section.key``."""
    sources: Mapping[str, str]
    """By ``section.key``: ``default``, the file's path, the environment variable or the flag."""
    model: BaseSettings
    """The same values in the pydantic-settings model (``model.server.port``)."""
    built: Mapping[str, Any]
    """By section: its settings object (objects that are not configuration left at their defaults)."""
    SECRET_WORDS: ClassVar[tuple[str, ...]] = ("secret", "password", "token", "credential")

    def value(self, path: str) -> Any:
        return self.values[path]

    def section(self, name: str) -> dict[str, Any]:
        """The keys of section ``name`` and their values."""
        (section,) = (s for s in self.sections if s.name == name)
        return {k.name: self.values[k.path] for k in section.keys}

    def has(self, name: str) -> bool:
        return any(s.name == name for s in self.sections)

    def build(self, name: str, **objects: Any) -> Any:
        """The settings object of section ``name`` with ``objects`` (fields that are not
        configuration: TLS settings, authentication ...); ConfigError naming the key the dataclass
        refused and where its value came from."""
        (section,) = (s for s in self.sections if s.name == name)
        return _build(section, self.section(name), self.sources, objects)

    def refuse(self, path: str, problem: str) -> ConfigError:
        """A ConfigError about key ``path`` (found wrong by its user), naming where its value came from."""
        return ConfigError(f"{_where(self.sources[path])}{path}: {problem}")

    def shown(self, path: str) -> Any:
        """A value as ``config show`` prints it: a URL without its user and password, a secret hidden."""
        value = self.values[path]
        name = path.rpartition(".")[2]
        if value is not None and any(word in name for word in self.SECRET_WORDS) and "file" not in name:
            return "(hidden)"
        if isinstance(value, str):
            return scrub_urls(value)
        if isinstance(value, tuple):
            return [scrub_urls(v) for v in value]
        return value

    def as_json(self) -> dict[str, dict[str, dict[str, Any]]]:
        """``{section: {key: {"value": ..., "source": ...}}}``."""
        return {
            s.name: {k.name: {"value": self.shown(k.path), "source": self.sources[k.path]} for k in s.keys}
            for s in self.sections
        }

    def as_text(self) -> str:
        """One line per key: ``section.key = value  (source)``, aligned."""
        rows = [
            (k.path, json.dumps(self.shown(k.path)), self.sources[k.path])
            for s in self.sections
            for k in s.keys
        ]
        width = max(len(p) for p, _, _ in rows)
        value_width = min(max(len(v) for _, v, _ in rows), 40)
        return "\n".join(f"{p.ljust(width)} = {v.ljust(value_width)}  ({src})" for p, v, src in rows)


def _where(source: str) -> str:
    return "" if source == DEFAULT else f"{source}: "


def _build(section: Section, values: Mapping[str, Any], sources: Mapping[str, str], objects: Any) -> Any:
    try:
        return section.target(**values, **objects)
    except (ValueError, TypeError) as exc:
        message = str(exc)
        # The key the dataclass names first in its message (its messages start with the field).
        named = sorted(
            (found.start(), k)
            for k in section.keys
            if (found := re.search(rf"(?<![\w.]){re.escape(k.name)}\b", message)) is not None
        )
        if named:
            key = named[0][1]
            source = sources[key.path]
            if source.startswith("-"):  # a flag: on the user's command line, and the message names the key
                raise ConfigError(message) from None
            raise ConfigError(f"{_where(source)}{key.path}: {message}") from None
        given = sorted({src for k in section.keys if (src := sources[k.path]) != DEFAULT})
        origin = f" (values from {', '.join(given)})" if given else ""
        raise ConfigError(f"{section.name}: {message}{origin}") from None


# -- reading the file ------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (PyYAML keeps the last one:
    a value lost without a word)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, str) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key {key!r} is given twice", key_node.start_mark
                )
            if isinstance(key, str):
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", type(None): "empty"}.get(
        type(value), type(value).__name__
    )


def _read_file(path: str) -> tuple[dict[str, Any], dict[tuple[str, ...], int]]:
    """The file's mapping, and the line of each section and key in it; ConfigError naming the file
    (and the line) when it cannot be read or is no YAML mapping."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read the configuration file {path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_FILE_BYTES // 1024} KiB: not a configuration file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (at byte offset {exc.start})") from None
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = " ".join(filter(None, (exc.context, exc.problem)))
        raise ConfigError(f"{path}{line}: not valid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply: not a configuration file") from None
    finally:
        loader.dispose()
    if data is None:
        return {}, {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: must be a mapping of sections (server:, session: ...), not {_kind(data)}")
    lines: dict[tuple[str, ...], int] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            lines[(str(key_node.value),)] = key_node.start_mark.line + 1
            if isinstance(value_node, yaml.MappingNode):
                for inner, _ in value_node.value:
                    lines[(str(key_node.value), str(inner.value))] = inner.start_mark.line + 1
    return data, lines


def _suggest(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def _file_layer(path: str, sections: tuple[Section, ...]) -> dict[str, Any]:
    data, lines = _read_file(path)
    by_name = {s.name: s for s in sections}
    out: dict[str, Any] = {}

    def at(*where: str) -> str:
        line = lines.get(tuple(where))
        return f"{path}:{line}" if line else path

    for name, body in data.items():
        section = by_name.get(name) if isinstance(name, str) else None
        if section is None:
            raise ConfigError(
                f"{at(str(name))}: unknown section {name!r}{_suggest(str(name), by_name)}; "
                f"the sections are {', '.join(by_name)}"
            )
        if body is None:
            continue
        if not isinstance(body, dict):
            raise ConfigError(f"{at(name)}: {name} must be a mapping of keys, not {_kind(body)}")
        for key_name, value in body.items():
            key = section.key(key_name) if isinstance(key_name, str) else None
            if key is None:
                hint = _suggest(str(key_name), [k.name for k in section.keys])
                raise ConfigError(f"{at(name, str(key_name))}: unknown key {name}.{key_name}{hint}")
            try:
                out[key.path] = key.check(value, strict=True)
            except ValueError as exc:
                raise ConfigError(f"{at(name, key_name)}: {key.path}: {exc}") from None
    return out


# -- reading the environment -----------------------------------------------------------------------


def _env_layer(sections: tuple[Section, ...]) -> tuple[dict[str, Any], dict[str, str]]:
    """The keys the environment sets, and the variable each came from; ConfigError naming a
    variable that is no key or holds a bad value."""
    keys = {k.env: k for s in sections for k in s.keys}
    named: dict[str, str] = {}  # key path -> the variable as it is spelled in the environment
    for variable, text in os.environ.items():
        upper = variable.upper()
        if not upper.startswith(ENV_PREFIX) or upper in OTHER_ENV or upper in (CONFIG_ENV, DEBUG_ENV):
            continue
        key = keys.get(upper)
        if key is None:
            raise ConfigError(f"{variable}: no such setting{_suggest(upper, keys)}")
        if key.path in named:
            raise ConfigError(f"{variable} and {named[key.path]} both set {key.path}")
        if _is_list(key.hint):
            try:
                json.loads(text) if text != "null" else None
            except ValueError:
                raise ConfigError(
                    f'{variable}: {key.path}: expected a JSON list of strings (["a", "b"])'
                ) from None
        named[key.path] = variable
    values: dict[str, Any] = {}
    if named:
        # pydantic-settings reads the variables: prefix, delimiter, case, JSON lists, "null".
        found = EnvSettingsSource(_model(sections))()
        for path, variable in named.items():
            section, _, name = path.partition(".")
            (key,) = (k for s in sections if s.name == section for k in s.keys if k.name == name)
            raw = found.get(section, {}).get(name)
            try:
                values[path] = key.check(raw, strict=False)
            except ValueError as exc:
                raise ConfigError(f"{variable}: {path}: {exc}") from None
    debug_key = next((k for s in sections for k in s.keys if k.path == "observability.debug"), None)
    flag = os.environ.get(DEBUG_ENV, "")
    if debug_key is not None and flag and debug_key.path not in named:
        try:
            values[debug_key.path] = debug_key.check(flag, strict=False)
        except ValueError as exc:
            raise ConfigError(f"{DEBUG_ENV}: {exc} (1 or 0)") from None
        named[debug_key.path] = DEBUG_ENV
    return values, named


# -- all together ----------------------------------------------------------------------------------


def load(
    sections: Iterable[Section],
    *,
    file: str | os.PathLike[str] | None = None,
    flags: Mapping[str, tuple[Any, str]] | None = None,
) -> Configuration:
    """The configuration of ``sections``: their defaults, overridden by ``file`` (default: the file
    ``A2A_CONFIG`` names, if any), by ``A2A_*`` environment variables, then by ``flags``
    (``{"server.port": (8080, "--grpc-port")}``: the flags given, with their values). Every section's
    settings object is built, so that the dataclasses judge the values; ConfigError, naming the
    key and the source of its value, on the first problem."""
    chosen = tuple(sections)
    by_path = {k.path: k for s in chosen for k in s.keys}
    values = {path: key.default for path, key in by_path.items()}
    sources = dict.fromkeys(by_path, DEFAULT)
    if file is None and os.environ.get(CONFIG_ENV):
        file = os.environ[CONFIG_ENV]
    # The layers are read one by one (not merged by pydantic-settings alone) so that every value,
    # and every refusal, can name where it came from.
    if file is not None:
        path = os.fspath(file)
        for key_path, value in _file_layer(path, chosen).items():
            values[key_path], sources[key_path] = value, path
    env_values, env_names = _env_layer(chosen)
    for key_path, value in env_values.items():
        values[key_path], sources[key_path] = value, env_names[key_path]
    for key_path, (value, flag) in (flags or {}).items():
        key = by_path.get(key_path)
        if key is None:
            raise TypeError(f"{flag} sets {key_path}, which is no key of these sections")
        try:
            values[key_path] = key.check(value, strict=False)
        except ValueError as exc:
            raise ConfigError(f"{flag}: {key_path}: {exc}") from None
        sources[key_path] = flag
    for key_path, value in values.items():
        if isinstance(value, float) and not math.isfinite(value):  # a default never is; be sure
            raise ConfigError(f"{_where(sources[key_path])}{key_path}: must be a finite number")
    nested: dict[str, dict[str, Any]] = {s.name: {} for s in chosen}
    for key_path, value in values.items():
        section_name, _, name = key_path.partition(".")
        nested[section_name][name] = list(value) if isinstance(value, tuple) else value
    model = _model(chosen).model_validate(nested)
    built = {s.name: _build(s, {k.name: values[k.path] for k in s.keys}, sources, {}) for s in chosen}
    return Configuration(chosen, values, sources, model, built)


def describe(section: Section) -> list[tuple[str, str, str]]:
    """The rows of a section's table in the docs: key, default (as YAML writes it), meaning."""
    return [(k.name, _yaml_value(k.default), k.doc) for k in section.keys]


def _yaml_value(value: Any) -> str:
    if isinstance(value, tuple):
        value = list(value)
    return str(yaml.safe_dump(value, default_flow_style=True, width=1000)).removesuffix("\n...\n").strip()


def library_sections(**defaults: Mapping[str, Any]) -> dict[str, Section]:
    """The sections of the core library's settings, by name: ``server`` (:class:`ServerSettings`),
    ``session``, ``limits``, ``client``, ``resilience`` (the client's retries and breakers),
    ``push`` and ``observability``. ``defaults``: per section, defaults that replace the
    dataclass's (a command's own)."""
    # Imported here: the server side is heavy, and a client reading its own settings needs none of it.
    from a2a_grpc.client import ClientSettings
    from a2a_grpc.observability.settings import ObservabilitySettings
    from a2a_grpc.push import PushSettings
    from a2a_grpc.resilience import ResiliencePolicy
    from a2a_grpc.security.limits import Limits
    from a2a_grpc.server import ServerSettings
    from a2a_grpc.session.negotiation import SessionSettings

    targets: dict[str, type] = {
        "server": ServerSettings,
        "session": SessionSettings,
        "limits": Limits,
        "client": ClientSettings,
        "resilience": ResiliencePolicy,
        "push": PushSettings,
        "observability": ObservabilitySettings,
    }
    unknown = set(defaults) - set(targets)
    if unknown:
        raise TypeError(f"no such sections: {sorted(unknown)}")
    return {name: Section.of(name, target, defaults=defaults.get(name)) for name, target in targets.items()}
