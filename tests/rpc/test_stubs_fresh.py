"""The committed stubs were generated from the committed proto (compared by descriptor)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from google.protobuf import descriptor_pb2

from kronos.v1 import predictor_pb2

ROOT = Path(__file__).resolve().parents[2]


def test_generated_descriptor_matches_proto(tmp_path: Path) -> None:
    out = tmp_path / "descriptor.pb"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            "-I",
            str(ROOT / "protos"),
            f"--descriptor_set_out={out}",
            "kronos/v1/predictor.proto",
        ],
        check=True,
    )
    fresh = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file[0]
    # descriptor sets carry json_name, the generated module's copy does not
    for message in fresh.message_type:
        for field in message.field:
            field.ClearField("json_name")
    committed = descriptor_pb2.FileDescriptorProto.FromString(predictor_pb2.DESCRIPTOR.serialized_pb)
    assert committed == fresh, "stubs are stale: run `make protos` and commit clients/kronos/v1"


def test_service_methods_are_the_contract() -> None:
    service = predictor_pb2.DESCRIPTOR.services_by_name["KronosPredictor"]
    assert [m.name for m in service.methods] == [
        "PredictSingle",
        "PredictBatch",
        "PredictStream",
        "GetModelInfo",
    ]
    assert predictor_pb2.DESCRIPTOR.package == "kronos.v1"


def test_every_field_is_documented() -> None:
    """Each field, oneof and message of the proto has a comment line right above it."""
    import re

    lines = (ROOT / "protos/kronos/v1/predictor.proto").read_text().splitlines()
    field = re.compile(r"^\s+(optional |repeated )?[\w.]+ \w+ = \d+;|^\s+oneof \w+ \{")
    undocumented = [
        line.strip()
        for i, line in enumerate(lines)
        if field.match(line) and not lines[i - 1].strip().startswith("//")
    ]
    assert not undocumented, undocumented
