"""The committed stubs were generated from the committed proto (compared by descriptor)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
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
        "Backtest",
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


def test_every_language_gets_its_package_from_the_proto() -> None:
    """The usual file options are set, so no language needs a mapping flag (protos/README.md)."""
    options = predictor_pb2.DESCRIPTOR.GetOptions()
    import_path, _, go_name = options.go_package.partition(";")
    assert import_path.endswith("/kronos/v1") and go_name == "kronosv1"
    assert options.java_package.endswith(".kronos.v1") and options.java_multiple_files
    assert options.java_outer_classname == "PredictorProto"
    assert options.csharp_namespace == "Kronos.V1"
    assert options.php_namespace == "Kronos\\V1"
    assert options.ruby_package == "Kronos::V1"
    assert len(options.objc_class_prefix) >= 3


# Debian's protoc-gen-go and protoc-gen-go-grpc packages (CI installs them in .ci/run)
GO_PLUGINS = {name: shutil.which(f"protoc-gen-{name}") for name in ("go", "go-grpc")}


@pytest.mark.skipif(
    None in GO_PLUGINS.values() and not os.environ.get("CI"),
    reason="the Go plugins are not installed (apt-get install protoc-gen-go protoc-gen-go-grpc)",
)
def test_protoc_gen_go_accepts_the_proto_without_mapping_flags(tmp_path: Path) -> None:
    """What a Go user runs first; without go_package protoc-gen-go refuses the file."""
    plugins = [f"--plugin=protoc-gen-{name}={path}" for name, path in GO_PLUGINS.items()]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            "-I",
            str(ROOT / "protos"),
            *plugins,
            f"--go_out={tmp_path}",
            f"--go-grpc_out={tmp_path}",
            "kronos/v1/predictor.proto",
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    import_path = predictor_pb2.DESCRIPTOR.GetOptions().go_package.partition(";")[0]
    generated = tmp_path / import_path
    for name in ("predictor.pb.go", "predictor_grpc.pb.go"):
        assert "\npackage kronosv1\n" in (generated / name).read_text(), name
