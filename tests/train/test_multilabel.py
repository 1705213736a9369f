"""Multi-label end to end: a tagged table trains with BCE, evaluate gives mAP/F1, and the checkpoint,
its ONNX export, the runtime and zoo serve give the same labels."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from zoo.testing import make_image_folder
from zoo.train.metrics import average_precision, f1_scores

# make_image_folder colours: red, green, blue, yellow; each image is tagged with its colour and a group.
GROUP = {"red": "warm", "yellow": "warm", "green": "cool", "blue": "cool"}


@pytest.fixture(scope="module")
def tagged(tmp_path_factory):
    root = make_image_folder(tmp_path_factory.mktemp("tagged"), tuple(GROUP), per_class=10, size=32)
    with open(root / "tags.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file", "tags", "is_valid"])
        for path in sorted(root.glob("*/*.png")):
            colour = path.parent.name
            writer.writerow([path.relative_to(root), f"{colour} {GROUP[colour]}", int(path.stem >= "0007")])
    return root / "tags.csv"


@pytest.fixture(scope="module")
def trained(tagged, tmp_path_factory):
    from zoo.train import fit

    out = tmp_path_factory.mktemp("ml")
    result = fit("net", str(tagged), out=out, multi_label=True, epochs=6, lr=0.05, batch_size=8, seed=0,
                 progress=False, plot=False)
    return result


def test_multi_label_training_learns(trained, tagged):
    from zoo.io import load_config
    from zoo.train import evaluate

    config = load_config(trained.best_path)
    assert config["multi_label"] is True and config["train_args"]["task"] == "multi_label"
    assert config["class_names"] == ["blue", "cool", "green", "red", "warm", "yellow"]
    assert trained.history[-1]["train_loss"] < trained.history[0]["train_loss"]
    result = evaluate(trained.best_path, str(tagged))  # the 12 validation rows
    assert result.num_images == 12 and result.multi_label
    assert result.mean_ap > 0.9 and result.f1 > 0.6  # chance mAP is about 0.33 (4 colours, 2 groups)
    assert set(result.per_class_ap) == set(config["class_names"])
    assert result.to_dict()["mean_ap"] == result.mean_ap


def test_checkpoint_onnx_runtime_and_serve_give_the_same_labels(trained, tagged, tmp_path):
    from starlette.testclient import TestClient

    from zoo.export import export
    from zoo.export.predict import TorchModel
    from zoo.runtime import load
    from zoo.runtime.serve import ServeConfig, load_models
    from zoo.runtime.serve.app import Server

    onnx = export(trained.best_path, ["onnx"], tmp_path)["onnx"]
    images = sorted(tagged.parent.glob("*/0009.png"))
    by_torch = TorchModel(trained.best_path).predict(images)
    by_onnx = load(onnx, provider="cpu").predict(images)
    assert [p.labels for p in by_torch] == [p.labels for p in by_onnx]
    assert all(p.labels and p.multi_label for p in by_onnx)
    for a, b in zip(by_torch, by_onnx):
        assert np.allclose(a.probabilities, b.probabilities, atol=1e-4)
    with TestClient(Server(load_models([str(onnx)], provider="cpu"), ServeConfig()).app()) as client:
        served = client.post("/v1/models/model/predict", content=images[0].read_bytes()).json()
        everything = client.post("/v1/models/model/predict?threshold=0", content=images[0].read_bytes()).json()
        bad = client.post("/v1/models/model/predict?threshold=2", content=images[0].read_bytes())
    assert [x["label"] for x in served["labels"]] == by_onnx[0].labels
    assert len(everything["labels"]) == 6 and bad.status_code == 400
    assert by_onnx[0].to_dict()["labels"][0]["probability"] >= 0.5


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1), st.booleans()), min_size=1, max_size=20))
def test_average_precision_is_one_exactly_when_positives_rank_first(rows):
    scores = torch.tensor([[s] for s, _ in rows], dtype=torch.float64)
    targets = torch.tensor([[float(t)] for _, t in rows])
    ap = average_precision(scores, targets)[0]
    if not any(t for _, t in rows):
        assert ap is None
        return
    order = sorted(range(len(rows)), key=lambda i: -rows[i][0])  # stable, as the metric ranks
    ranked = [rows[i][1] for i in order]
    positives = sum(ranked)
    assert 0 < ap <= 1 + 1e-12
    assert (abs(ap - 1) < 1e-12) == all(ranked[:positives])
    # the definition, by hand: the mean over positives of the precision at their rank
    assert abs(ap - sum(sum(ranked[: k + 1]) / (k + 1) for k, t in enumerate(ranked) if t) / positives) < 1e-9
    f1 = f1_scores(scores, targets, 0.5)[0]
    assert f1 is None or 0 <= f1 <= 1
