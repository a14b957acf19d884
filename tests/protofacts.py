"""Helpers for the wire-contract tests: descriptor facts and fully populated messages."""

from __future__ import annotations

from google.api import annotations_pb2, client_pb2, field_behavior_pb2
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor, FileDescriptor
from google.protobuf.message import Message

LABELS = {1: "optional", 2: "required", 3: "repeated"}
TYPES = {v: k.removeprefix("TYPE_").lower() for k, v in descriptor_pb2.FieldDescriptorProto.Type.items()}


def file_proto(file: FileDescriptor) -> descriptor_pb2.FileDescriptorProto:
    # Parsed with the default pool's descriptor_pb2, where google.api extensions are registered.
    return descriptor_pb2.FileDescriptorProto.FromString(file.serialized_pb)


def _message_facts(prefix: str, m: descriptor_pb2.DescriptorProto) -> list[str]:
    name = f"{prefix}.{m.name}"
    out = [f"message {name} map_entry={m.options.map_entry}"]
    for f in sorted(m.field, key=lambda f: f.number):
        oneof = m.oneof_decl[f.oneof_index].name if f.HasField("oneof_index") else "-"
        behavior = sorted(
            field_behavior_pb2.FieldBehavior.Name(b)
            for b in f.options.Extensions[field_behavior_pb2.field_behavior]
        )
        out.append(
            f"field {name}.{f.name} number={f.number} type={TYPES[f.type]} type_name={f.type_name or '-'} "
            f"label={LABELS[f.label]} oneof={oneof} proto3_optional={f.proto3_optional} "
            f"json_name={f.json_name} behavior={','.join(behavior) or '-'} deprecated={f.options.deprecated}"
        )
    for nested in m.nested_type:
        out += _message_facts(name, nested)
    for enum in m.enum_type:
        out += _enum_facts(name, enum)
    return out


def _enum_facts(prefix: str, e: descriptor_pb2.EnumDescriptorProto) -> list[str]:
    return [f"enum {prefix}.{e.name}"] + [
        f"enum_value {prefix}.{e.name}.{v.name} = {v.number}" for v in e.value
    ]


def wire_facts(file: FileDescriptor) -> list[str]:
    """Every wire-relevant fact of a .proto file, one line each, sorted: a diffable fingerprint."""
    fdp = file_proto(file)
    prefix = "." + fdp.package
    out = [f"package {fdp.package}"]
    for m in fdp.message_type:
        out += _message_facts(prefix, m)
    for e in fdp.enum_type:
        out += _enum_facts(prefix, e)
    for s in fdp.service:
        out.append(f"service {prefix}.{s.name}")
        for m in s.method:
            rpc = f"rpc {s.name}.{m.name}"
            out.append(
                f"{rpc} input={m.input_type} output={m.output_type} "
                f"client_streaming={m.client_streaming} server_streaming={m.server_streaming}"
            )
            rule = m.options.Extensions[annotations_pb2.http]
            for i, binding in enumerate([rule, *rule.additional_bindings]):
                verb = binding.WhichOneof("pattern")
                out.append(
                    f"{rpc} http[{i}] {verb} {getattr(binding, verb)} body={binding.body or '-'} "
                    f"response_body={binding.response_body or '-'}"
                )
            for sig in m.options.Extensions[client_pb2.method_signature]:
                out.append(f"{rpc} method_signature {sig}")
    return sorted(out)


def _scalar(field: FieldDescriptor, seed: int) -> object:
    t = field.type
    if t == FieldDescriptor.TYPE_STRING:
        return f"{field.name}-{seed}"
    if t == FieldDescriptor.TYPE_BYTES:
        return bytes([seed, 0, 255, 7]) + field.name.encode()
    if t == FieldDescriptor.TYPE_BOOL:
        return True
    if t in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
        return 0.5 + seed
    if t == FieldDescriptor.TYPE_ENUM:
        values = field.enum_type.values
        return values[(seed % (len(values) - 1)) + 1].number if len(values) > 1 else 0
    return 7 + seed


def _fill_wkt(msg: Message, seed: int) -> bool:
    name = msg.DESCRIPTOR.full_name
    if name == "google.protobuf.Struct":
        msg.update({"k": seed, "s": "v", "nested": {"list": [1, "two", None, True]}})  # type: ignore[attr-defined]
    elif name == "google.protobuf.Value":
        msg.struct_value.update({"answer": 42, "items": ["a", seed]})  # type: ignore[attr-defined]
    elif name == "google.protobuf.Timestamp":
        msg.seconds, msg.nanos = 1_700_000_000 + seed, 123_000_000  # type: ignore[attr-defined]
    elif name == "google.protobuf.Empty":
        pass
    else:
        return False
    return True


def populate(msg: Message, oneof_choice: int = 0, seed: int = 1, depth: int = 0) -> Message:
    """Set every field of msg (recursively, bounded depth). For each oneof, sets member `oneof_choice`."""
    if _fill_wkt(msg, seed):
        return msg
    d: Descriptor = msg.DESCRIPTOR
    for field in d.fields:
        oneof = field.containing_oneof
        # Real oneofs get one member per variant; proto3 `optional` fields sit alone in a synthetic one.
        if (
            oneof is not None
            and len(oneof.fields) > 1
            and oneof.fields.index(field) != oneof_choice % len(oneof.fields)
        ):
            continue
        value = getattr(msg, field.name)
        is_message = field.type == FieldDescriptor.TYPE_MESSAGE
        if is_message and field.message_type.GetOptions().map_entry:
            vfield = field.message_type.fields_by_name["value"]
            for k in ("a", "b"):
                if vfield.type == FieldDescriptor.TYPE_MESSAGE:
                    if depth < 3:
                        populate(value[k], oneof_choice, seed + 1, depth + 1)
                else:
                    value[k] = _scalar(vfield, seed)
        elif field.is_repeated:
            for i in range(2):
                if is_message:
                    if depth < 3:
                        populate(value.add(), oneof_choice + i, seed + i, depth + 1)
                else:
                    value.append(_scalar(field, seed + i))
        elif is_message:
            if depth < 4:
                populate(value, oneof_choice, seed, depth + 1)
        else:
            setattr(msg, field.name, _scalar(field, seed))
    return msg


def oneof_variants(d: Descriptor) -> int:
    """How many instances cover every member of every oneof of a message (one level)."""
    return max([len(o.fields) for o in d.oneofs if len(o.fields) > 1] or [1])
