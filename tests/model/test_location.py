"""Checkpoint directories: Hugging Face cache snapshots and repositories load, with readable names.

The cache is laid out as huggingface_hub writes it (blobs, snapshot files symlinked into
``../../blobs/``, ``refs/main``); no hub client and no network are involved.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kronos_server.cli import main
from kronos_server.errors import CheckpointError
from kronos_server.model.bundle import DEFAULT_MODEL_DIR, load_bundle
from kronos_server.model.checkpoint import CONFIG_FILE, content_version, load_predictor, load_tokenizer
from tests.model.checkpoints import ROOT, hub_cache, write_pair

CSV = ROOT / "server/kronos_server/default_model/data/regression_input.csv"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MODEL_PATH", "TOKENIZER_PATH", "MAX_CONTEXT", "DEVICE", "LOG_FORMAT", "LOG_LEVEL"):
        monkeypatch.delenv(f"KRONOS_{name}", raising=False)


@pytest.fixture
def cache(tmp_path: Path) -> dict[str, tuple[Path, Path]]:
    """A random-weight pair cached as NeoQuasar/Kronos-small and NeoQuasar/Kronos-Tokenizer-base."""
    predictor, tokenizer = write_pair(tmp_path / "plain")
    hub = tmp_path / "hf-home" / "hub"
    return {
        "predictor": hub_cache(hub, "NeoQuasar/Kronos-small", predictor),
        "tokenizer": hub_cache(hub, "NeoQuasar/Kronos-Tokenizer-base", tokenizer),
        "plain": (predictor, tokenizer),
    }


def test_the_layout_is_the_hub_cache_one(cache: dict[str, tuple[Path, Path]]) -> None:
    repo, snapshot = cache["predictor"]
    config = snapshot / CONFIG_FILE
    assert config.is_symlink() and config.readlink().parts[:3] == ("..", "..", "blobs")
    assert config.resolve().parent == (repo / "blobs").resolve()
    assert (repo / "refs" / "main").read_text() == snapshot.name and len(snapshot.name) == 40


def test_a_snapshot_directory_loads_under_its_hub_id(cache: dict[str, tuple[Path, Path]]) -> None:
    _, snapshot = cache["predictor"]
    loaded = load_predictor(snapshot)
    assert loaded.name == "NeoQuasar/Kronos-small"
    assert snapshot.name not in loaded.name
    # the version is the content hash: the same bytes as the plain directory, the same version
    assert loaded.version == content_version(cache["plain"][0])
    assert load_tokenizer(cache["tokenizer"][1]).name == "NeoQuasar/Kronos-Tokenizer-base"


def test_the_repository_directory_loads_the_snapshot_refs_main_names(
    cache: dict[str, tuple[Path, Path]],
) -> None:
    repo, snapshot = cache["predictor"]
    loaded = load_predictor(repo)
    assert loaded.path == snapshot and loaded.name == "NeoQuasar/Kronos-small"


def test_a_bundle_from_the_cache_reports_both_hub_ids(cache: dict[str, tuple[Path, Path]]) -> None:
    bundle = load_bundle(cache["predictor"][0], cache["tokenizer"][1], 128)
    assert bundle.predictor_info.name == "NeoQuasar/Kronos-small"
    assert bundle.tokenizer_info.name == "NeoQuasar/Kronos-Tokenizer-base"


def test_forecast_from_cache_directories(
    cache: dict[str, tuple[Path, Path]], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["forecast", "--csv", str(CSV), "--tail", "60", "--pred-len", "3", "--seed", "1"]
    models = ["--model", str(cache["predictor"][0]), "--tokenizer", str(cache["tokenizer"][0])]
    code = main([*argv, *models, "--max-context", "128"])
    out, err = capsys.readouterr()
    assert code == 0, err
    response = json.loads(out)
    assert len(response["prediction"]) == 3
    assert response["model_version"] == content_version(cache["plain"][0])


def test_without_refs_the_only_snapshot_is_used(tmp_path: Path) -> None:
    predictor, _ = write_pair(tmp_path / "plain")
    repo, snapshot = hub_cache(tmp_path / "hub", "NeoQuasar/Kronos-mini", predictor, refs=False)
    assert load_predictor(repo).path == snapshot


def test_a_cache_directory_that_names_no_snapshot_is_refused(tmp_path: Path) -> None:
    predictor, _ = write_pair(tmp_path / "plain")
    repo, snapshot = hub_cache(tmp_path / "hub", "NeoQuasar/Kronos-small", predictor)
    (repo / "refs" / "main").write_text("0" * 40)
    with pytest.raises(CheckpointError, match=f"refs/main names snapshot {'0' * 40}, which is not in"):
        load_predictor(repo)
    (repo / "refs" / "main").unlink()
    (repo / "snapshots" / ("1" * 40)).mkdir()
    with pytest.raises(CheckpointError, match="without refs/main and with 2 snapshots") as err:
        load_predictor(repo)
    assert str(repo) in err.value.message
    assert load_predictor(snapshot).name == "NeoQuasar/Kronos-small"  # a snapshot still loads


def test_a_local_dir_download_is_named_by_its_directory(tmp_path: Path) -> None:
    """`huggingface-cli download REPO --local-dir ckpt/Kronos-small` gives a plain directory."""
    predictor, _ = write_pair(tmp_path / "plain")
    local = tmp_path / "ckpt" / "Kronos-small"
    local.parent.mkdir()
    predictor.rename(local)
    assert load_predictor(local).name == "Kronos-small"


def test_the_embedded_model_is_named_as_a_demo() -> None:
    bundle = load_bundle(None, None, 512)
    assert bundle.predictor_info.name == "kronos-serve-embedded-demo"
    assert bundle.tokenizer_info.name == "kronos-serve-embedded-demo-tokenizer"
    # the same names when its directories are given explicitly
    assert load_predictor(DEFAULT_MODEL_DIR / "predictor").name == "kronos-serve-embedded-demo"
    assert load_tokenizer(DEFAULT_MODEL_DIR / "tokenizer").name == "kronos-serve-embedded-demo-tokenizer"
