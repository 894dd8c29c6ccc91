"""Conformance of ephysd's Allego contract with radiens-core's descriptors.

The real client (radiens-core) is built from protoc output we do not control;
``proto/allego/*.proto`` is derived from it by a script.  This test closes the
loop: it takes the descriptor set that ``ephysd-proto`` actually compiled
(``cargo run -p ephysd-proto --bin ephysd-proto-descriptors``) and compares
every served method and every message/enum reachable from it, recursively,
against the client's descriptors.  All differences are collected and reported
together, so one run shows the whole drift.

Run with the radiens-core venv::

    /tmp/pyenv312/bin/python -m pytest tests/interop/test_proto_conformance.py -q
"""

from __future__ import annotations

import copy
import subprocess
from collections import deque
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool

# Importing the client's generated module registers its descriptors in the
# default pool; that pool is the reference.
from radiens_core._generated import allegoserver_pb2

REPO_ROOT = Path(__file__).resolve().parents[2]
#: Served services and their method counts in radiens-core 0.1.2.
SERVICES = {
    "allego.AllegoLifecycle": 7,
    "allego.AllegoCore": 84,
    "allego.Pcache1": 5,
    "allego.Kpi1": 8,
    "allego.Neurons1": 16,
}
DESCRIPTOR_CMD = ["cargo", "run", "-q", "-p", "ephysd-proto", "--bin", "ephysd-proto-descriptors"]
#: Generous: the first run may compile the crate and wait on the cargo lock.
CARGO_TIMEOUT_S = 1800


# --------------------------------------------------------------------------
# Loading both sides
# --------------------------------------------------------------------------


def reference_pool() -> descriptor_pool.DescriptorPool:
    return allegoserver_pb2.DESCRIPTOR.pool


def ours_descriptor_set() -> descriptor_pb2.FileDescriptorSet:
    """The descriptor set embedded in ephysd-proto, straight from its binary."""
    result = subprocess.run(
        DESCRIPTOR_CMD, cwd=REPO_ROOT, capture_output=True, timeout=CARGO_TIMEOUT_S, check=False
    )
    if result.returncode != 0:
        pytest.fail(f"{' '.join(DESCRIPTOR_CMD)} failed:\n{result.stderr.decode(errors='replace')}")
    return descriptor_pb2.FileDescriptorSet.FromString(result.stdout)


def pool_from(fds: descriptor_pb2.FileDescriptorSet) -> descriptor_pool.DescriptorPool:
    """A fresh pool holding exactly ``fds`` (files are in dependency order)."""
    pool = descriptor_pool.DescriptorPool()
    for fdp in fds.file:
        pool.Add(fdp)
    return pool


@pytest.fixture(scope="module")
def ours_fds() -> descriptor_pb2.FileDescriptorSet:
    return ours_descriptor_set()


@pytest.fixture(scope="module")
def ours_pool(ours_fds) -> descriptor_pool.DescriptorPool:
    return pool_from(ours_fds)


# --------------------------------------------------------------------------
# The comparator
# --------------------------------------------------------------------------


def label_of(field) -> str:
    if field.is_repeated:
        return "repeated"
    return "required" if field.is_required else "optional"


def type_name_of(field) -> str | None:
    """Full name of a message/enum field's type, ``None`` for scalars."""
    if field.message_type is not None:
        return field.message_type.full_name
    if field.enum_type is not None:
        return field.enum_type.full_name
    return None


def is_map(field) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def proto3_optional_names(message) -> set[str]:
    """Fields declared proto3 ``optional`` (their oneof is synthetic)."""
    proto = descriptor_pb2.DescriptorProto()
    message.CopyToProto(proto)
    return {f.name for f in proto.field if f.proto3_optional}


def real_oneof_of(field, synthetic: set[str]) -> str | None:
    if field.containing_oneof is None or field.name in synthetic:
        return None
    return field.containing_oneof.name


def field_facts(field, synthetic: set[str]) -> dict:
    """Everything about a field that changes what goes over the wire."""
    return {
        "number": field.number,
        "type": field.type,
        "label": label_of(field),
        "presence": field.has_presence,
        "proto3_optional": field.name in synthetic,
        "type_name": type_name_of(field),
        "oneof": real_oneof_of(field, synthetic),
        "map": is_map(field),
        "packed": field.is_packed,
        "default": (field.default_value if field.has_default_value else None),
    }


class Comparator:
    """Walks both pools from the services outwards and records every difference."""

    def __init__(self, reference, ours) -> None:
        self.reference = reference
        self.ours = ours
        self.diffs: list[str] = []
        self.seen: set[str] = set()
        self.queue: deque[str] = deque()
        self.messages_checked = 0
        self.enums_checked = 0

    def run(self, services) -> list[str]:
        for name in services:
            self.compare_service(name)
        while self.queue:
            self.compare_type(self.queue.popleft())
        return self.diffs

    def diff(self, where: str, what: str, ref, ours) -> None:
        self.diffs.append(f"{where}: {what} differs (radiens-core={ref!r}, ephysd={ours!r})")

    def enqueue(self, full_name: str | None) -> None:
        if full_name and full_name not in self.seen:
            self.seen.add(full_name)
            self.queue.append(full_name)

    def compare_names(self, where: str, kind: str, ref_names, our_names) -> set[str]:
        """Reports names missing on either side; returns the shared ones."""
        ref_names, our_names = set(ref_names), set(our_names)
        for name in sorted(ref_names - our_names):
            self.diffs.append(f"{where}: {kind} {name!r} missing in ephysd")
        for name in sorted(our_names - ref_names):
            self.diffs.append(f"{where}: {kind} {name!r} not in radiens-core")
        return ref_names & our_names

    # -- services -------------------------------------------------------------

    def compare_service(self, name: str) -> None:
        ref = find(self.reference.FindServiceByName, name)
        ours = find(self.ours.FindServiceByName, name)
        if ref is None or ours is None:
            self.diffs.append(f"{name}: service missing in {'radiens-core' if ref is None else 'ephysd'}")
            return
        ref_methods = {m.name: m for m in ref.methods}
        our_methods = {m.name: m for m in ours.methods}
        for method in sorted(self.compare_names(name, "method", ref_methods, our_methods)):
            self.compare_method(f"{name}.{method}", ref_methods[method], our_methods[method])

    def compare_method(self, where: str, ref, ours) -> None:
        for what, getter in (
            ("input type", lambda m: m.input_type.full_name),
            ("output type", lambda m: m.output_type.full_name),
            ("client streaming", lambda m: m.client_streaming),
            ("server streaming", lambda m: m.server_streaming),
        ):
            if getter(ref) != getter(ours):
                self.diff(where, what, getter(ref), getter(ours))
        self.enqueue(ref.input_type.full_name)
        self.enqueue(ref.output_type.full_name)

    # -- messages and enums ---------------------------------------------------

    def compare_type(self, full_name: str) -> None:
        ref_msg = find(self.reference.FindMessageTypeByName, full_name)
        if ref_msg is not None:
            ours = find(self.ours.FindMessageTypeByName, full_name)
            if ours is None:
                self.diffs.append(f"{full_name}: message missing in ephysd")
            else:
                self.compare_message(ref_msg, ours)
            return
        ref_enum = find(self.reference.FindEnumTypeByName, full_name)
        ours = find(self.ours.FindEnumTypeByName, full_name)
        if ref_enum is None:
            self.diffs.append(f"{full_name}: type not found in radiens-core")
        elif ours is None:
            self.diffs.append(f"{full_name}: enum missing in ephysd")
        else:
            self.compare_enum(ref_enum, ours)

    def compare_message(self, ref, ours) -> None:
        self.messages_checked += 1
        where = ref.full_name
        ref_synthetic, our_synthetic = proto3_optional_names(ref), proto3_optional_names(ours)
        for name in sorted(self.compare_names(where, "field", ref.fields_by_name, ours.fields_by_name)):
            ref_field, our_field = ref.fields_by_name[name], ours.fields_by_name[name]
            ref_facts = field_facts(ref_field, ref_synthetic)
            our_facts = field_facts(our_field, our_synthetic)
            for key in ref_facts:
                if ref_facts[key] != our_facts[key]:
                    self.diff(f"{where}.{name}", key, ref_facts[key], our_facts[key])
            self.enqueue(type_name_of(ref_field))
        self.compare_names(where, "oneof", real_oneofs(ref, ref_synthetic), real_oneofs(ours, our_synthetic))
        ref_nested = {t.name: t for t in ref.nested_types} | {e.name: e for e in ref.enum_types}
        our_nested = {t.name: t for t in ours.nested_types} | {e.name: e for e in ours.enum_types}
        for name in sorted(self.compare_names(where, "nested type", ref_nested, our_nested)):
            self.enqueue(ref_nested[name].full_name)

    def compare_enum(self, ref, ours) -> None:
        self.enums_checked += 1
        where = ref.full_name
        ref_values = {v.name: v.number for v in ref.values}
        our_values = {v.name: v.number for v in ours.values}
        for name in sorted(self.compare_names(where, "enum value", ref_values, our_values)):
            if ref_values[name] != our_values[name]:
                self.diff(f"{where}.{name}", "number", ref_values[name], our_values[name])
        if ref.is_closed != ours.is_closed:
            self.diff(where, "closed (proto2) enum", ref.is_closed, ours.is_closed)


def real_oneofs(message, synthetic: set[str]) -> set[str]:
    return {
        o.name for o in message.oneofs if not all(f.name in synthetic for f in o.fields)
    }


def find(lookup, name: str):
    """Pool lookup that answers ``None`` instead of raising ``KeyError``."""
    try:
        return lookup(name)
    except KeyError:
        return None


def compare(reference, ours) -> tuple[list[str], Comparator]:
    comparator = Comparator(reference, ours)
    return comparator.run(SERVICES), comparator


# --------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------


def test_reference_has_the_expected_services():
    """Guards the baseline: a different radiens-core would change the contract."""
    for name, count in SERVICES.items():
        assert len(reference_pool().FindServiceByName(name).methods) == count, name


def test_contract_matches_radiens_core(ours_pool):
    diffs, comparator = compare(reference_pool(), ours_pool)
    assert not diffs, f"{len(diffs)} differences:\n" + "\n".join(diffs)
    # The walk must actually have covered the contract, not vacuously passed.
    assert comparator.messages_checked > 100
    assert comparator.enums_checked > 10


def mutate_field_number(fds):
    field = find_message_proto(fds, "ConfigRecording").field[2]  # dataSourceIdx = 3
    field.number = 99
    return "allego.ConfigRecording.dataSourceIdx: number differs (radiens-core=3, ephysd=99)"


def mutate_label(fds):
    field = find_message_proto(fds, "ConfigRecording").field[0]  # baseFileName, required
    field.label = descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL
    return "allego.ConfigRecording.baseFileName: label differs"


def mutate_enum_value(fds):
    enum = find_enum_proto(fds, "DataRecordingType")
    enum.value[2].number = 7
    return "allego.DataRecordingType.continuousAndSpikes: number differs"


def mutate_streaming(fds):
    method = find_method_proto(fds, "AllegoCore", "GetSpectral")
    method.server_streaming = False
    return "allego.AllegoCore.GetSpectral: server streaming differs"


def mutate_drop_field(fds):
    msg = find_message_proto(fds, "ConfigRecording")
    del msg.field[6]  # recordingType
    return "allego.ConfigRecording: field 'recordingType' missing in ephysd"


@pytest.mark.parametrize(
    "mutate",
    [mutate_field_number, mutate_label, mutate_enum_value, mutate_streaming, mutate_drop_field],
    ids=lambda f: f.__name__.removeprefix("mutate_"),
)
def test_comparator_reports_a_difference(ours_fds, mutate):
    """A deliberately broken copy of our contract must be caught and named."""
    broken = copy.deepcopy(ours_fds)
    expected = mutate(broken)
    diffs, _ = compare(reference_pool(), pool_from(broken))
    assert any(d.startswith(expected) for d in diffs), "\n".join(diffs) or "no differences reported"


def find_file_proto(fds, predicate):
    return next(f for f in fds.file if f.package == "allego" and predicate(f))


def find_message_proto(fds, name: str):
    fdp = find_file_proto(fds, lambda f: any(m.name == name for m in f.message_type))
    return next(m for m in fdp.message_type if m.name == name)


def find_enum_proto(fds, name: str):
    fdp = find_file_proto(fds, lambda f: any(e.name == name for e in f.enum_type))
    return next(e for e in fdp.enum_type if e.name == name)


def find_method_proto(fds, service: str, method: str):
    fdp = find_file_proto(fds, lambda f: any(s.name == service for s in f.service))
    svc = next(s for s in fdp.service if s.name == service)
    return next(m for m in svc.method if m.name == method)
