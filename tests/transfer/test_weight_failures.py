"""Weight sources that fail say so: a broken source is named, a denied or offline download gives the ways out.

Every download here is a monkeypatched function; the network is never touched.
"""

from __future__ import annotations

import dataclasses
import socket
import types
import urllib.error

import pytest

import zoo
import zoo.pretrained as pretrained
from zoo.errors import WeightsNotFoundError
from zoo.extensions import WeightSource
from zoo.registry import PretrainedWeights

WEIGHTS = PretrainedWeights(tag="t", url="https://example.invalid/m-1.pth", hf_hub_id="org/m")


def spec():
    return dataclasses.replace(zoo.get_spec("cifar8_resnet"), weights=(WEIGHTS,))


class GatedRepoError(Exception):
    """Shaped like huggingface_hub's: an HTTP error with a response."""

    def __init__(self, message, status=401):
        super().__init__(message)
        self.response = types.SimpleNamespace(status_code=status)


class EntryNotFoundError(Exception):
    pass


class LocalEntryNotFoundError(FileNotFoundError):
    """What hf_hub_download raises when it cannot reach the hub and the cache lacks the file."""


@pytest.fixture
def online(monkeypatch, caches):
    """The network is 'allowed' (ZOO_OFFLINE unset) but every real connection fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("the network was touched")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    for var in ("ZOO_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)


def fake_downloads(monkeypatch, hub_error=None, url_error=None):
    import huggingface_hub
    import torch.hub

    calls = []

    def hub(repo, name, **kwargs):
        calls.append(name)
        raise hub_error

    def url(u, dst, progress=True):
        calls.append(u)
        raise url_error

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hub)
    monkeypatch.setattr(torch.hub, "download_url_to_file", url)
    return calls


def test_an_offline_source_that_raises_is_named_with_its_error(monkeypatch, caches, no_network):
    def broken(spec, weights, allow_download):
        raise RuntimeError("index.json is corrupt")

    sources = [WeightSource("my-mirror", broken, priority=10), *pretrained.weight_sources()]
    monkeypatch.setattr(pretrained, "weight_sources", lambda: sources)
    with pytest.raises(WeightsNotFoundError) as err:
        pretrained.resolve_weights(spec())
    text = str(err.value)
    assert "my-mirror (RuntimeError: index.json is corrupt)" in text and "--weights" in text and "\n" not in text


def test_a_gated_hub_repo_says_log_in(monkeypatch, online):
    calls = fake_downloads(monkeypatch, GatedRepoError("Cannot access gated repo"), urllib.error.HTTPError(
        WEIGHTS.url, 404, "Not Found", {}, None))
    with pytest.raises(WeightsNotFoundError) as err:
        pretrained.resolve_weights(spec())
    text = str(err.value)
    assert "gated or private: log in" in text and "huggingface-cli login" in text and "HF_TOKEN" in text
    assert "from org/m was refused" in text and "\n" not in text
    assert calls == ["model.safetensors", WEIGHTS.url]  # the URL was still tried


@pytest.mark.parametrize("status", [401, 403])
def test_a_denied_url_says_so(monkeypatch, online, status):
    fake_downloads(monkeypatch, EntryNotFoundError("no such file"),
                   urllib.error.HTTPError(WEIGHTS.url, status, "Forbidden", {}, None))
    with pytest.raises(WeightsNotFoundError) as err:  # not the hub: logging in to it would not help
        pretrained.resolve_weights(spec())
    assert f"{WEIGHTS.url} was refused (HTTP {status}: access denied" in str(err.value)
    assert "--weights FILE" in str(err.value) and "huggingface" not in str(err.value)


@pytest.mark.parametrize("error", [
    urllib.error.URLError(socket.gaierror(-3, "Temporary failure in name resolution")),
    LocalEntryNotFoundError("An error happened while trying to locate the file on the Hub"),
    ConnectionError("Connection refused"),
])
def test_no_network_ends_with_the_offline_ways_out(monkeypatch, online, error):
    fake_downloads(monkeypatch, error, urllib.error.URLError(socket.gaierror(-3, "Temporary failure in name resolution")))
    with pytest.raises(WeightsNotFoundError) as err:
        pretrained.resolve_weights(spec())
    text = str(err.value)
    assert "no network" in text and "--weights FILE" in text and "m-1.pth" in text and "models--org--m" in text
    assert "allow the network" not in text and "\n" not in text


def test_a_missing_hub_file_tries_the_next_name_then_the_url(monkeypatch, online):
    calls = fake_downloads(monkeypatch, EntryNotFoundError("404"), OSError("disk full"))
    with pytest.raises(WeightsNotFoundError, match="disk full"):
        pretrained.resolve_weights(spec())
    assert calls == ["model.safetensors", "pytorch_model.bin", WEIGHTS.url]


def test_download_failures_are_classified():
    from zoo.pretrained.sources import download_failure

    assert download_failure(GatedRepoError("x", 403))[0] == "denied"
    assert "HF_TOKEN" not in download_failure(urllib.error.HTTPError("u", 401, "Unauthorized", {}, None))[1]
    assert download_failure(urllib.error.HTTPError("u", 404, "Not Found", {}, None))[0] == "missing"
    assert download_failure(TimeoutError("timed out"))[0] == "offline"
    chained = RuntimeError("wrapped")
    chained.__cause__ = socket.gaierror(-2, "Name or service not known")
    assert download_failure(chained) == ("offline", "no network ([Errno -2] Name or service not known)")
    assert download_failure(ValueError("bad checksum")) == ("other", "bad checksum")
