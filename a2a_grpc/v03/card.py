"""The agent card across versions: v1.0 <-> v0.3 protos, the card JSON v0.3 clients read, and parsing.

* :func:`to_v03_agent_card` / :func:`to_v10_agent_card`: ``lf.a2a.v1.AgentCard`` <-> ``a2a.v1.AgentCard``.
  Only the interfaces of a 0.x (or empty) ``protocol_version`` are shown to v0.3: the first is the
  card's ``url`` / ``preferred_transport`` / ``protocol_version``; with more than one, all are
  listed in ``additional_interfaces`` (the v0.3 spec, 5.6, wants the main one there too). Back,
  every v0.3 interface takes the card's ``protocol_version`` (``"0.3"`` if it has none), duplicates
  dropped. Lost: every interface's ``tenant``, v1.0 ``OAuthFlows.device_code`` and
  ``AuthorizationCodeOAuthFlow.pkce_required`` (v1.0 -> v0.3), and v0.3
  ``capabilities.stateTransitionHistory`` (v0.3 -> v1.0, JSON only).
* :func:`merged_card_json`: what our card endpoint publishes, the v1.0 ProtoJSON object plus
  the members of the v0.3 card JSON it lacks (nested objects merged, lists of objects merged
  element by element), as the official SDK does: v1.0 clients ignore the v0.3 members, v0.3
  clients the v1.0 ones. A card with no v0.3 interface gets no v0.3 members.
* :func:`parse_card_json`: a card JSON object of either version as a v1.0 ``AgentCard``. One with
  ``supportedInterfaces`` is v1.0; else it is a v0.3 card (``url``, ``preferredTransport``,
  ``additionalInterfaces``, flat ``securitySchemes`` with ``type``, ``security`` as
  ``[{name: [scopes]}]``), read as the v0.3 JSON schema says.

The v0.3 card JSON is the same on JSON-RPC and HTTP+JSON (a2a.json's shape, not the ProtoJSON of
``a2a.v1``, which differs in ``securitySchemes`` and ``security``): :func:`v03_card_json` makes it.
Messages with the same wire form in both protos (security schemes, skills, provider, extensions,
signatures) are copied as bytes, so a field only v1.0 has (``pkce_required``, ``device_code``)
falls away as an unknown field.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.message import Message

from a2a_grpc import _pool, errors, types
from a2a_grpc.v03 import types as v03
from a2a_grpc.v03.convert import _invalid

__all__ = [
    "V03_VERSION",
    "is_v03_version",
    "merged_card_json",
    "parse_card_json",
    "to_v03_agent_card",
    "to_v10_agent_card",
    "v03_card_json",
]

V03_VERSION = "0.3"
"""The version we give a v0.3 interface that names none."""

MAX_CARD_DEPTH = 64
"""Nesting past this in a card JSON is refused (a card is shallow; free-form members are bounded)."""

M = TypeVar("M", bound=Message)

# SecurityScheme wrapper member (ProtoJSON) <-> v0.3 JSON "type".
_SCHEME_TYPES = {
    "apiKeySecurityScheme": "apiKey",
    "httpAuthSecurityScheme": "http",
    "oauth2SecurityScheme": "oauth2",
    "openIdConnectSecurityScheme": "openIdConnect",
    "mtlsSecurityScheme": "mutualTLS",
}
_SCHEME_WRAPPERS = {v: k for k, v in _SCHEME_TYPES.items()}


def is_v03_version(version: str) -> bool:
    """Whether an interface's ``protocol_version`` is the v0.3 wire: empty, or of major 0 (0.2, 0.3)."""
    major = version.strip().split(".", 1)[0]
    return not version.strip() or major == "0"


def _wire_copy(message: Message, cls: type[M]) -> M:
    out = cls()
    out.ParseFromString(message.SerializeToString())
    out.DiscardUnknownFields()
    return out


def to_v03_agent_card(card: types.AgentCard) -> v03.AgentCard:
    out = v03.AgentCard(
        name=card.name,
        description=card.description,
        version=card.version,
        documentation_url=card.documentation_url,
        icon_url=card.icon_url,
        default_input_modes=card.default_input_modes,
        default_output_modes=card.default_output_modes,
        protocol_version=V03_VERSION,
    )
    legacy = [i for i in card.supported_interfaces if is_v03_version(i.protocol_version)]
    if legacy:
        # The main interface: JSON-RPC when offered, v0.3's default transport, which clients that
        # predate preferredTransport (v0.2) assume at `url`; else the first.
        main = next((i for i in legacy if i.protocol_binding == "JSONRPC"), legacy[0])
        out.url, out.preferred_transport = main.url, main.protocol_binding
        out.protocol_version = main.protocol_version or V03_VERSION
    if len(legacy) > 1:
        out.additional_interfaces.extend(
            v03.AgentInterface(url=i.url, transport=i.protocol_binding) for i in legacy
        )
    if card.HasField("provider"):
        out.provider.CopyFrom(_wire_copy(card.provider, v03.AgentProvider))
    caps = card.capabilities
    out.capabilities.streaming, out.capabilities.push_notifications = caps.streaming, caps.push_notifications
    out.capabilities.extensions.extend(_wire_copy(e, v03.AgentExtension) for e in caps.extensions)
    out.supports_authenticated_extended_card = caps.extended_agent_card
    for name, scheme in card.security_schemes.items():
        out.security_schemes[name].CopyFrom(_wire_copy(scheme, v03.SecurityScheme))
    out.security.extend(_wire_copy(r, v03.Security) for r in card.security_requirements)
    out.skills.extend(_wire_copy(s, v03.AgentSkill) for s in card.skills)
    out.signatures.extend(_wire_copy(s, v03.AgentCardSignature) for s in card.signatures)
    return out


def to_v10_agent_card(card: v03.AgentCard) -> types.AgentCard:
    out = types.AgentCard(
        name=card.name,
        description=card.description,
        version=card.version,
        default_input_modes=card.default_input_modes,
        default_output_modes=card.default_output_modes,
    )
    version = card.protocol_version or V03_VERSION
    seen: set[tuple[str, str]] = set()
    for url, binding in [
        (card.url, card.preferred_transport or "JSONRPC"),
        *((i.url, i.transport) for i in card.additional_interfaces),
    ]:
        if url and (url, binding) not in seen:
            seen.add((url, binding))
            out.supported_interfaces.add(url=url, protocol_binding=binding, protocol_version=version)
    if card.documentation_url:
        out.documentation_url = card.documentation_url
    if card.icon_url:
        out.icon_url = card.icon_url
    if card.HasField("provider"):
        out.provider.CopyFrom(_wire_copy(card.provider, types.AgentProvider))
    caps = card.capabilities
    for flag, value in [
        ("streaming", caps.streaming),
        ("push_notifications", caps.push_notifications),
        ("extended_agent_card", card.supports_authenticated_extended_card),
    ]:
        if value:  # absent and false mean the same
            setattr(out.capabilities, flag, True)
    out.capabilities.extensions.extend(_wire_copy(e, types.AgentExtension) for e in caps.extensions)
    for name, scheme in card.security_schemes.items():
        out.security_schemes[name].CopyFrom(_wire_copy(scheme, types.SecurityScheme))
    out.security_requirements.extend(_wire_copy(r, types.SecurityRequirement) for r in card.security)
    out.skills.extend(_wire_copy(s, types.AgentSkill) for s in card.skills)
    out.signatures.extend(_wire_copy(s, types.AgentCardSignature) for s in card.signatures)
    return out


# --- JSON ----------------------------------------------------------------------------------------


def _flat_scheme(wrapped: Mapping[str, Any]) -> dict[str, Any] | None:
    for member, kind in _SCHEME_TYPES.items():
        if member in wrapped:
            body = dict(wrapped[member])
            if kind == "apiKey" and "location" in body:
                body["in"] = body.pop("location")
            if kind == "oauth2":
                body.setdefault("flows", {})
                for flow in body["flows"].values():
                    flow.setdefault("scopes", {})
            return {"type": kind, **body}
    return None  # a scheme of no kind: nothing a v0.3 client could use


def _flat_requirements(requirements: list[Any]) -> list[dict[str, list[str]]]:
    return [
        {name: list(scopes.get("list", [])) for name, scopes in r.get("schemes", {}).items()}
        for r in requirements
    ]


def v03_card_json(card: types.AgentCard) -> dict[str, Any] | None:
    """The card as a v0.3 client reads it (a2a.json's AgentCard), or None if it has no v0.3 interface."""
    if not any(is_v03_version(i.protocol_version) for i in card.supported_interfaces):
        return None
    data: dict[str, Any] = json_format.MessageToDict(to_v03_agent_card(card))
    schemes = {n: _flat_scheme(s) for n, s in data.pop("securitySchemes", {}).items()}
    if schemes := {n: s for n, s in schemes.items() if s is not None}:
        data["securitySchemes"] = schemes
    if "security" in data:
        data["security"] = _flat_requirements(data["security"])
    for skill in data.setdefault("skills", []):
        skill.setdefault("tags", [])
        if "security" in skill:
            skill["security"] = _flat_requirements(skill["security"])
    for key in ("name", "description", "url", "version", "preferredTransport"):
        data.setdefault(key, "")
    for key in ("defaultInputModes", "defaultOutputModes"):
        data.setdefault(key, [])
    data.setdefault("capabilities", {})
    return data


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> None:
    for key, value in extra.items():
        if key not in base:
            base[key] = copy.deepcopy(value)
        elif isinstance(base[key], dict) and isinstance(value, Mapping):
            _merge(base[key], value)
        elif isinstance(base[key], list) and isinstance(value, list) and len(base[key]) == len(value):
            for mine, theirs in zip(base[key], value, strict=True):
                if isinstance(mine, dict) and isinstance(theirs, Mapping):
                    _merge(mine, theirs)


def merged_card_json(card: types.AgentCard, v10_json: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The card JSON that both generations read: ``v10_json`` (the card's ProtoJSON; computed if
    None) plus the v0.3 members it lacks. ``v10_json`` is not modified."""
    out = copy.deepcopy(dict(v10_json)) if v10_json is not None else json_format.MessageToDict(card)
    legacy = v03_card_json(card)
    if legacy is not None:
        _merge(out, legacy)
    return out


def _depth(value: object, limit: int) -> bool:
    """Whether ``value`` nests no deeper than ``limit`` (iteratively: a hostile card cannot recurse us)."""
    todo: list[tuple[object, int]] = [(value, 0)]
    while todo:
        item, level = todo.pop()
        if level > limit:
            return False
        if isinstance(item, Mapping):
            todo.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            todo.extend((v, level + 1) for v in item)
    return True


def _wrapped_scheme(name: str, scheme: object) -> object:
    if not isinstance(scheme, Mapping) or "type" not in scheme:
        return scheme  # already a v1.0 / ProtoJSON wrapper, or wrong: ParseDict says so
    body = {k: v for k, v in scheme.items() if k != "type"}
    kind = scheme["type"]
    member = _SCHEME_WRAPPERS.get(kind) if isinstance(kind, str) else None
    if member is None:
        raise _invalid(
            f"securitySchemes.{name}.type", f"{errors.echo(kind)} is not a v0.3 security scheme type"
        )
    if "in" in body:
        body["location"] = body.pop("in")
    return {member: body}


def _wrapped_requirements(requirements: object, field: str) -> object:
    if not isinstance(requirements, list):
        return requirements
    out: list[object] = []
    for i, requirement in enumerate(requirements):
        if not isinstance(requirement, Mapping):
            raise _invalid(f"{field}[{i}]", "must be an object of scheme name -> scopes")
        if all(isinstance(v, list) for v in requirement.values()):
            out.append({"schemes": {n: {"list": s} for n, s in requirement.items()}})
        else:
            out.append(requirement)  # ProtoJSON form ({"schemes": {...}})
    return out


def _v03_protojson(data: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(data)
    schemes = out.get("securitySchemes")
    if isinstance(schemes, Mapping):
        out["securitySchemes"] = {n: _wrapped_scheme(str(n), s) for n, s in schemes.items()}
    if "security" in out:
        out["security"] = _wrapped_requirements(out["security"], "security")
    skills = out.get("skills")
    if isinstance(skills, list):
        out["skills"] = [
            {**s, "security": _wrapped_requirements(s["security"], f"skills[{i}].security")}
            if isinstance(s, Mapping) and "security" in s
            else s
            for i, s in enumerate(skills)
        ]
    return out


def _parse(data: Mapping[str, Any], message: M) -> M:
    try:
        json_format.ParseDict(
            dict(data),
            message,
            ignore_unknown_fields=True,
            descriptor_pool=_pool.POOL,
            max_recursion_depth=MAX_CARD_DEPTH,
        )
    except (json_format.ParseError, RecursionError, ValueError, TypeError, AttributeError) as exc:
        raise _invalid("card", f"is not a valid agent card: {str(exc)[:300]}") from None
    return message


def parse_card_json(data: object) -> types.AgentCard:
    """A card JSON object of either generation as a v1.0 ``AgentCard`` (members it does not define
    ignored). :class:`InvalidParamsError` naming the member if it is no card."""
    if not isinstance(data, Mapping):
        raise _invalid("card", "must be a JSON object")
    if not _depth(data, MAX_CARD_DEPTH):
        raise _invalid("card", f"nests deeper than {MAX_CARD_DEPTH} levels")
    if "supportedInterfaces" in data or "supported_interfaces" in data:
        return _parse(data, types.AgentCard())
    return to_v10_agent_card(_parse(_v03_protojson(data), v03.AgentCard()))
