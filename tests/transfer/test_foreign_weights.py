"""Weight files from other libraries and broken files: matched by order, or refused in one clear line."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

import zoo
from zoo.errors import CheckpointError


def foreign_file(tmp_path, num_classes, *, seed=3, suffix=".pth", edit=None):
    """cifar8_resnet's tensors saved under another library's names (``_conv_stem``-style), in order."""
    torch.manual_seed(seed)
    state = zoo.create_model("cifar8_resnet", num_classes=num_classes).state_dict()
    renamed = {f"_layer{i:03d}._w" if not k.endswith("num_batches_tracked") else f"_layer{i:03d}.num_batches_tracked": v
               for i, (k, v) in enumerate(state.items())}
    if edit is not None:
        edit(renamed)
    path = tmp_path / f"foreign{suffix}"
    if suffix == ".safetensors":
        save_file({k: v.contiguous() for k, v in renamed.items()}, str(path))
    else:
        torch.save(renamed, path)
    return path, state


def test_foreign_names_with_another_class_count_load_by_order(tmp_path):
    path, state = foreign_file(tmp_path, num_classes=1000)
    model = zoo.create_model("cifar8_resnet", num_classes=2, weights=str(path))
    own = model.state_dict()
    body = [k for k in state if not k.startswith("fc.") and not k.endswith("num_batches_tracked")]
    assert body and all(torch.equal(own[k], state[k]) for k in body)
    assert own["fc.weight"].shape == (2, own["fc.weight"].shape[1])
    assert zoo.model_info(model).pretrained["missing"] == ["fc.weight", "fc.bias"]
    # the dropped classifier is named as the file spells it
    assert len(zoo.model_info(model).pretrained["dropped"]) == 2 and all(k.startswith("_layer") for k in zoo.model_info(model).pretrained["dropped"])


def test_foreign_names_with_the_same_class_count_keep_the_classifier(tmp_path):
    path, state = foreign_file(tmp_path, num_classes=8)
    model = zoo.create_model("cifar8_resnet", weights=str(path))
    assert torch.equal(model.state_dict()["fc.weight"], state["fc.weight"])
    assert zoo.model_info(model).pretrained["missing"] == []


def test_foreign_names_in_a_safetensors_file_are_not_paired_by_order(tmp_path):
    # safetensors sorts its keys, so its order says nothing about the module order
    # (here the names happen to sort in module order; that is luck, not a contract).
    path, _ = foreign_file(tmp_path, num_classes=8, suffix=".safetensors")
    with pytest.raises(CheckpointError, match="not the module order .safetensors stores keys sorted."):
        zoo.create_model("cifar8_resnet", weights=str(path))


def test_a_sorted_file_whose_names_agree_on_their_last_part_loads(tmp_path):
    # Another prefix for every module, the same last parts: each tensor is singled out by name part
    # and shape, or shares both with equal tensors (BatchNorm's fresh running statistics).
    torch.manual_seed(4)
    model = zoo.create_model("net", num_classes=2)
    state = model.state_dict()
    renamed = {f"other.m{i}.{k.rsplit('.', 1)[-1]}": v.clone() for i, (k, v) in enumerate(state.items())}
    path = tmp_path / "renamed.safetensors"
    save_file(renamed, str(path))
    loaded = zoo.create_model("net", num_classes=2, weights=str(path)).state_dict()
    assert all(torch.equal(loaded[k], state[k]) for k in state)


def test_foreign_file_that_fits_only_partly_names_a_key_of_the_file(tmp_path):
    def damage(renamed):  # one body tensor of another shape: not the same architecture
        key = next(k for k, v in renamed.items() if v.ndim == 4 and v.shape[0] == 128)
        renamed[key] = torch.zeros(5, 5, 3, 3)

    path, _ = foreign_file(tmp_path, num_classes=1000, edit=damage)
    with pytest.raises(CheckpointError, match=r"first mismatching key '_layer\d+\._w' is not in the model") as info:
        zoo.create_model("cifar8_resnet", num_classes=2, weights=str(path))
    file_keys = set(torch.load(path, weights_only=True))
    named = str(info.value).split("'")[1]
    assert named in file_keys


def test_another_architecture_names_a_key_that_is_in_the_file(tmp_path):
    other = {k: v.contiguous() for k, v in zoo.create_model("net").state_dict().items()}
    path = tmp_path / "net.safetensors"
    save_file(other, str(path))
    with pytest.raises(CheckpointError, match="first mismatching key") as info:
        zoo.create_model("cifar8_resnet", weights=str(path))
    assert str(info.value).split("'")[1] in other


def test_a_file_missing_body_tensors_names_one_it_has(tmp_path):
    state = zoo.create_model("cifar8_resnet").state_dict()
    kept = {k: v.contiguous() for k, v in list(state.items())[:6]}
    path = tmp_path / "part.safetensors"
    save_file(kept, str(path))
    with pytest.raises(CheckpointError, match="has no tensor in the file") as info:
        zoo.create_model("cifar8_resnet", weights=str(path))
    assert f"the file's first key is {next(iter(sorted(kept)))!r}" in str(info.value) or any(
        f"'{k}'" in str(info.value) for k in kept
    )


@pytest.mark.parametrize("name, content", [("notes.pth", b"just some text\n" * 20), ("tiny.pt", b"abc"),
                                           ("fake.safetensors", b"hello"), ("empty.bin", b"")])
def test_a_file_that_is_no_weight_file_says_so(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="is not a PyTorch or safetensors weight file"):
        zoo.create_model("cifar8_resnet", weights=str(path))
