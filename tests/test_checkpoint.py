"""Checkpoint directories: round trip, atomic replacement, recovery, refusal of bad files."""

import json
import os

import pytest
import torch

import zoo
from zoo import checkpoint
from zoo.errors import CheckpointError


@pytest.fixture
def model():
    torch.manual_seed(0)
    return zoo.create_model("net", num_classes=3)


def save(path, model, **kw):
    config = checkpoint.make_config(model, class_names=["a", "b", "c"], **kw)
    return checkpoint.save_checkpoint(path, model, config, training_state={"epoch": 4, "lr": torch.tensor(0.1)})


def test_round_trip_rebuilds_the_same_model(tmp_path, model):
    save(tmp_path / "ck", model, metrics={"val_acc": 0.5})
    loaded, config = checkpoint.load_checkpoint(tmp_path / "ck")
    x = torch.randn(2, 3, 32, 32)
    model.eval()
    assert torch.equal(loaded(x), model(x))
    assert config["class_names"] == ["a", "b", "c"] and config["num_classes"] == 3
    assert config["architecture"] == "net" and config["versions"]["torch"] == torch.__version__
    assert checkpoint.load_training_state(tmp_path / "ck")["epoch"] == 4
    # the weights file alone carries the config in its header
    assert torch.equal(zoo.load(tmp_path / "ck" / "model.safetensors")(x), model(x))


def test_kwargs_survive_the_round_trip(tmp_path):
    model = zoo.create_model("net", num_classes=2, kernel_size=5)
    save(tmp_path / "ck", model)
    loaded, config = checkpoint.load_checkpoint(tmp_path / "ck")
    assert config["model_kwargs"] == {"kernel_size": 5}
    assert loaded.conv1.kernel_size == (5, 5)


def test_failed_save_leaves_the_old_checkpoint_intact(tmp_path, model, monkeypatch):
    save(tmp_path / "ck", model)
    before = (tmp_path / "ck" / "model.safetensors").read_bytes()

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint, "write_json", disk_full)
    with torch.no_grad():
        model.fc2.weight.add_(1.0)
    with pytest.raises(OSError, match="No space left"):
        save(tmp_path / "ck", model)
    assert (tmp_path / "ck" / "model.safetensors").read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["ck"]  # no temporary directory left behind


def test_interrupted_swap_is_recovered(tmp_path, model):
    save(tmp_path / "ck", model)
    os.rename(tmp_path / "ck", tmp_path / ".ck.old")  # as if we died between the two renames
    loaded, _ = checkpoint.load_checkpoint(tmp_path / "ck")
    assert loaded.fc2.out_features == 3


def test_missing_and_foreign_directories_are_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        checkpoint.load_checkpoint(tmp_path / "nope")
    (tmp_path / "plain").mkdir()
    with pytest.raises(CheckpointError, match="has no config.json"):
        checkpoint.load_checkpoint(tmp_path / "plain")


def test_weights_that_do_not_fit_name_the_architecture(tmp_path, model):
    save(tmp_path / "ck", model)
    config = json.loads((tmp_path / "ck" / "config.json").read_text())
    config["num_classes"] = 7
    (tmp_path / "ck" / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="do not fit net: .*fc2"):
        checkpoint.load_checkpoint(tmp_path / "ck")


def test_training_state_with_code_is_refused(tmp_path, model):
    save(tmp_path / "ck", model)

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    torch.save({"x": Evil()}, tmp_path / "ck" / "training_state.pt")
    with pytest.raises(CheckpointError, match="cannot read training state"):
        checkpoint.load_training_state(tmp_path / "ck")


def test_written_files_get_the_usual_permissions(tmp_path, model):
    old = os.umask(0o022)
    try:
        save(tmp_path / "ck", model)
        checkpoint.write_json(tmp_path / "m.json", {"a": 1})
    finally:
        os.umask(old)
    assert (tmp_path / "ck").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "ck" / "model.safetensors").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "m.json").stat().st_mode & 0o777 == 0o644


def test_an_adapter_that_cannot_import_is_named_not_called_unknown(tmp_path, monkeypatch):
    from zoo import checkpoint as ckpt
    from zoo.errors import CheckpointError

    config = {"architecture": "lenet5", "num_classes": 10, "adapters": [{"type": "head"}]}
    monkeypatch.setitem(ckpt.ADAPTERS, "head", "zoo_no_such_module_here:rebuild")
    with pytest.raises(CheckpointError) as info:
        ckpt.build_model(config)
    message = str(info.value)
    assert "cannot be imported" in message and "zoo_no_such_module_here" in message
    assert "too old" not in message
    with pytest.raises(CheckpointError, match="unknown adapter 'wrapper'"):
        ckpt.build_model({**config, "adapters": [{"type": "wrapper"}]})
