"""Plain pickles given as weights: one clear line, no torch warning (issue 18, item 15)."""

from __future__ import annotations

import pickle
import warnings

import pytest
import torch

import zoo
from zoo.errors import CheckpointError
from zoo.pretrained import read_weight_file


def test_a_plain_pickle_is_refused_without_torchs_warning(tmp_path):
    path = tmp_path / "plain.pth"
    path.write_bytes(pickle.dumps({"weight": [1.0, 2.0]}, protocol=4))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch's UserWarning would fail the test
        with pytest.raises(CheckpointError, match="refusing .*plain.pth"):
            read_weight_file(path)


def test_a_pickle_renamed_safetensors_is_no_weight_file(tmp_path):
    path = tmp_path / "renamed.safetensors"
    path.write_bytes(pickle.dumps({"weight": [1.0, 2.0]}, protocol=4))
    with pytest.raises(CheckpointError, match="not a PyTorch or safetensors weight file: it is named .safetensors"):
        zoo.create_model("net", weights=str(path))


def test_a_torch_zip_named_safetensors_still_loads(tmp_path):
    state = zoo.create_model("net").state_dict()
    path = tmp_path / "zip.safetensors"
    torch.save(state, path)
    assert set(read_weight_file(path)) == set(state)
