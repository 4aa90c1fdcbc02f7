"""The one field vocabulary: domain <-> proto <-> REST, every direction from one table."""

from __future__ import annotations

import pytest

from kronos.v1 import predictor_pb2 as pb
from kronos_server.forecast import fields

# (domain, proto, REST): what prepare() names, the PredictRequest path, the JSON body path
TRIPLES = [
    ("close[3]", "history.close[3]", "candles[3].close"),
    ("volume[0]", "history.volume[0]", "candles[0].volume"),
    ("timestamps[2]", "history.timestamps_ms[2]", "timestamps[2]"),
    ("timestamps", "history.timestamps_ms", "timestamps"),
    ("prediction_timestamps[2]", "prediction_timestamps_ms[2]", "prediction_timestamps[2]"),
    ("top_p", "sampling.top_p", "overrides.top_p"),
    ("quantiles[1]", "sampling.quantiles[1]", "overrides.quantiles[1]"),
    ("seed", "sampling.seed", "overrides.seed"),
    ("pred_len", "pred_len", "overrides.pred_len"),
    ("series_id", "series_id", "series_id"),
    ("timezone", "timezone", "timezone"),
]


@pytest.mark.parametrize(("domain", "proto", "rest"), TRIPLES)
def test_every_direction(domain: str, proto: str, rest: str) -> None:
    assert fields.proto_path(domain) == proto
    assert fields.domain_path(proto) == domain
    assert fields.rest_path(domain) == rest
    assert fields.rest_from_proto(proto) == rest


@pytest.mark.parametrize("rest", [t[2] for t in TRIPLES] + ["candles", "overrides", "items", "request"])
def test_a_rest_path_is_left_as_it_is(rest: str) -> None:
    """The bridge's own parse errors already name REST paths: translating them is a no-op."""
    assert fields.rest_path(rest) == rest


def test_names_outside_the_table_pass_through() -> None:
    assert fields.proto_path("items") == "items" and fields.domain_path("items") == "items"
    assert fields.domain_path("sampling.future_field") == "sampling.future_field"
    assert fields.rest_path("sampling.future_field") == "overrides.future_field"


def test_every_row_names_a_real_proto_field() -> None:
    def resolves(path: str) -> bool:
        descriptor = pb.PredictRequest.DESCRIPTOR
        for part in path.split("."):
            field = descriptor.fields_by_name.get(part)
            if field is None:
                return False
            descriptor = field.message_type or descriptor
        return True

    assert [f.proto for f in fields.FIELDS if not resolves(f.proto)] == []
    assert len({f.proto for f in fields.FIELDS}) == len(fields.FIELDS)
    assert len({f.rest for f in fields.FIELDS}) == len(fields.FIELDS)
