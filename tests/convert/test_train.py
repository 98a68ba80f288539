"""maas train-example: the reference model, its data splits and its training settings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.convert.api import sources, tfimport
from tests.convert.conftest import Reference, run_cli
from tests.convert.models import save_npz


def test_reference_model_files_and_splits(reference: Reference) -> None:
    keras = tfimport.keras()
    model = keras.models.load_model(reference.model, compile=False)
    assert [t.name for t in model.inputs] == ["input"]
    assert model.layers[-1].name == "probabilities"
    assert [type(layer).__name__ for layer in model.layers] == [
        "Flatten",
        "Dense",
        "Dropout",
        "Dense",
    ]
    assert model.layers[1].units == 128
    assert model.layers[2].rate == pytest.approx(0.2)

    with np.load(reference.eval_data) as ev, np.load(reference.calib_data) as cal:
        x, y, xc = ev["x"], ev["y"], cal["x"]
    assert x.dtype == np.float32 and xc.dtype == np.float32
    assert x.shape[1:] == (8, 8) and xc.shape[1:] == (8, 8)
    assert x.min() >= 0.0 and x.max() <= 1.0
    assert y.dtype == np.int64 and y.shape == (len(x),)
    assert set(np.unique(y)) == set(range(10))
    settings = reference.settings
    # 1797 digits: three disjoint splits that add up.
    assert sum(settings["samples"].values()) == 1797
    assert settings["samples"]["eval"] == len(x) and settings["samples"]["calib"] == len(xc)


def test_train_npz_is_the_split_it_fitted_disjoint_from_eval_and_calib(
    reference: Reference,
) -> None:
    with (
        np.load(reference.train_data) as tr,
        np.load(reference.eval_data) as ev,
        np.load(reference.calib_data) as cal,
    ):
        x, y = tr["x"], tr["y"]
        held_out = {row.tobytes() for row in np.concatenate([ev["x"], cal["x"]])}
    assert x.dtype == np.float32 and y.dtype == np.int64 and x.shape[1:] == (8, 8)
    assert len(x) == len(y) == reference.settings["samples"]["train"]
    # Digits has duplicate images, so compare indices of the split, not pixels alone:
    # the three splits add up to the 1797 images and train rows are mostly unseen.
    unseen = sum(row.tobytes() not in held_out for row in x)
    assert unseen / len(x) > 0.95
    assert reference.settings["files"] == {
        "train": "train.npz",
        "calib": "calib.npz",
        "eval": "eval.npz",
    }


def test_training_settings_are_saved_beside_the_model(reference: Reference) -> None:
    saved = json.loads((reference.out / sources.TRAINING_FILE).read_text())
    assert saved == reference.settings
    assert saved["dataset"]["name"] == "digits"
    assert saved["epochs"] == 20 and saved["seed"] == 0 and saved["optimizer"] == "adam"
    assert saved["loss"] == "sparse_categorical_crossentropy"
    assert 0.9 < saved["final_accuracy"] <= 1.0
    assert 0.9 < saved["eval_accuracy"] <= 1.0
    assert saved["labels"] == [str(i) for i in range(10)]
    assert sources.read_training(reference.model) == saved


def test_cli_mnist_from_a_local_npz(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    data = save_npz(
        tmp_path / "mnist.npz",
        x_train=rng.integers(0, 256, (50, 28, 28), dtype=np.uint8),
        y_train=rng.integers(0, 10, 50, dtype=np.uint8),
        x_test=rng.integers(0, 256, (20, 28, 28), dtype=np.uint8),
        y_test=rng.integers(0, 10, 20, dtype=np.uint8),
    )
    out = tmp_path / "out"
    outcome = run_cli(
        "train-example",
        "--dataset",
        "mnist",
        "--data",
        data,
        "--epochs",
        "1",
        "--out",
        out,
        "--json",
    )
    assert outcome.code == 0, outcome.err
    document = outcome.json()
    assert document["settings"]["dataset"]["name"] == "mnist"
    assert document["settings"]["samples"] == {"train": 40, "calib": 10, "eval": 20}
    with np.load(out / "eval.npz") as ev:
        assert ev["x"].shape == (20, 28, 28) and ev["x"].dtype == np.float32
        assert ev["x"].max() <= 1.0 and ev["y"].dtype == np.int64
    assert (out / "model.keras").is_file() and (out / "calib.npz").is_file()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--dataset", "digits", "--data", "x.npz"], "--data is only for --dataset mnist"),
        (["--dataset", "mnist", "--data", "missing.npz"], "no such file"),
        (["--dataset", "cifar"], "invalid choice"),
        (["--epochs", "0"], "invalid --epochs"),
    ],
)
def test_cli_bad_training_arguments(tmp_path: Path, argv: list[str], message: str) -> None:
    outcome = run_cli("train-example", *argv, "--out", tmp_path / "out")
    assert outcome.code == 2
    assert message in outcome.err and outcome.err.count("\n") == 1
    assert not (tmp_path / "out").exists()
