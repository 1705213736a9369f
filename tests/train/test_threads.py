"""The default CPU thread count: one thread for small networks, torch's default for big ones."""

from __future__ import annotations

import torch

import zoo
from zoo.train.prepare import ONE_THREAD_MACS, default_threads


def test_small_networks_train_on_one_thread_and_big_ones_keep_all_cores():
    net = zoo.create_model("net", num_classes=2)
    assert default_threads(net, net, (3, 32, 32)) == 1
    big = zoo.create_model("resnet18", num_classes=2, pretrained=False)
    assert default_threads(big, big, (3, 160, 160)) is None  # torch's default: every core


def test_a_head_on_cached_features_trains_on_one_thread():
    big = zoo.create_model("resnet18", num_classes=2, pretrained=False)
    assert default_threads(big, big.get_classifier(), (3, 224, 224)) == 1


def test_the_threshold_sits_between_the_two():
    from zoo.data.budget import probe

    assert probe(zoo.create_model("net", num_classes=2), (3, 32, 32)).macs < ONE_THREAD_MACS
    assert probe(torch.nn.Conv2d(3, 64, 3), (3, 224, 224)).macs > ONE_THREAD_MACS


def test_threads_flag_wins(tmp_path):
    from zoo.data import load_image_data
    from zoo.testing import make_image_folder
    from zoo.train import Trainer

    data = load_image_data(make_image_folder(tmp_path / "d", ("a", "b"), per_class=4, size=32), (3, 32, 32))
    before = torch.get_num_threads()
    try:
        Trainer("net", data, epochs=1, threads=2, progress=False).setup()
        assert torch.get_num_threads() == 2
        Trainer("net", data, epochs=1, progress=False).setup()
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
