"""ItemError: the per-item status code as a number (google.rpc.Code) or, from older servers, a name."""

from __future__ import annotations

import grpc

from kronos.v1 import predictor_pb2 as pb
from kronos_client import ItemError


def test_item_error_reads_the_status_number_and_falls_back_to_the_name() -> None:
    numbered = ItemError.from_pb(2, pb.ItemError(status_code=8, message="busy"))
    assert (numbered.code, numbered.status) == ("RESOURCE_EXHAUSTED", grpc.StatusCode.RESOURCE_EXHAUSTED)
    # an older server sent only the name
    named = ItemError.from_pb(0, pb.ItemError(code="DEADLINE_EXCEEDED", message="late"))
    assert named.status == grpc.StatusCode.DEADLINE_EXCEEDED
    assert named.to_exception().code == grpc.StatusCode.DEADLINE_EXCEEDED
    both = ItemError.from_pb(1, pb.ItemError(code="INVALID_ARGUMENT", status_code=3, field="pred_len"))
    assert (both.code, both.status, both.field) == (
        "INVALID_ARGUMENT",
        grpc.StatusCode.INVALID_ARGUMENT,
        "pred_len",
    )
