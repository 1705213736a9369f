"""An input size the model cannot take, and a --val-split that leaves nothing to train on (issue 18, 13-14)."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

import zoo
from zoo.cli import cli
from zoo.data.folder import find_layout
from zoo.errors import DataError, ZooError
from zoo.models.probe import check_input_size
from zoo.testing import make_image_folder


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_image_folder(tmp_path_factory.mktemp("sizes"), ("a", "b"), per_class=20, size=8)


def test_a_fixed_size_model_names_the_size_it_takes(folder, tmp_path):
    res = CliRunner().invoke(cli, ["train", "net", "--data", str(folder), "--input-size", "3x64x64",
                                   "--epochs", "1", "--out", str(tmp_path / "o")])
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert "net takes 3x32x32 input" in res.output and "--input-size 3x64x64 does not fit it" in res.output
    assert not (tmp_path / "o").exists()


def test_the_python_api_refuses_it_too(folder):
    with pytest.raises(ZooError, match="net takes 3x32x32 input"):
        zoo.fit("net", folder, input_size=(3, 64, 64), epochs=1, progress=False, plot=False)


def test_a_model_that_adapts_passes_and_a_built_model_is_left_as_it_was():
    model = zoo.create_model("cifar8_resnet", num_classes=2)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    check_input_size(model, (3, 48, 48))
    check_input_size("cifar8_resnet", (3, 48, 48))
    assert model.training and torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_a_val_split_that_leaves_no_training_images_says_so(folder):
    with pytest.raises(DataError) as err:
        find_layout(folder, val_split=0.99)
    message = str(err.value)
    assert "--val-split 0.99 leaves no training images of class 'a'" in message
    assert "all 20 of its images" in message and "at most 0.974" in message
    layout = find_layout(folder, val_split=0.974)  # the largest split the message allows still trains
    assert sorted(set(layout.train.labels)) == [0, 1]
