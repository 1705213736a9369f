"""zoo serve's HTTP API in process: answers, limits, error codes, token, metrics."""

from __future__ import annotations

import io
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from zoo.runtime.serve import ServeConfig, load_models
from zoo.runtime.serve.app import Server

CLASSES = {"red", "green", "blue"}


@pytest.fixture(scope="module")
def onnx_file(exported):
    return str(exported["onnx"])


@pytest.fixture(scope="module")
def image_bytes(exported):
    return sorted(exported["images"].rglob("*.png"))[0].read_bytes()


def client_for(onnx_file, **config):
    from starlette.testclient import TestClient

    server = Server(load_models([onnx_file], provider="cpu"), ServeConfig(**config))
    return server, TestClient(server.app())


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text output (0 when absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(f"{name}{{") or line.startswith(f"{name} "):
            head, value = line.rsplit(" ", 1)
            got = head[len(name):].strip("{}")
            if ",".join(sorted(got.split(","))) == want or (not labels and not got):
                return float(value)
    return 0.0


def test_predict_answers_raw_bytes_and_multipart_with_labels_version_and_timing(onnx_file, image_bytes):
    _, client = client_for(onnx_file)
    with client:
        raw = client.post("/v1/models/model/predict?top_k=2", content=image_bytes).json()
        form = client.post("/v1/models/model/predict", files={"file": ("a.png", image_bytes, "image/png")}).json()
    assert raw["model"] == "model" and len(raw["version"]) == 12 and raw["generic"] is False
    assert len(raw["top"]) == 2 and raw["top"][0]["label"] in CLASSES
    assert raw["top"][0]["probability"] >= raw["top"][1]["probability"]
    assert raw["timing_ms"]["total"] >= raw["timing_ms"]["inference"] > 0
    assert form["top"][0] == raw["top"][0] and len(form["top"]) == 3


def test_concurrent_requests_share_a_batch_and_each_gets_its_own_answer(onnx_file, exported):
    images = sorted(exported["images"].rglob("*.png"))[:6]
    _, client = client_for(onnx_file, max_batch=8, max_wait_ms=1000)
    with client:
        alone = [client.post("/v1/models/model/predict", content=p.read_bytes()).json()["top"] for p in images]
        with ThreadPoolExecutor(6) as pool:
            together = list(pool.map(lambda p: client.post("/v1/models/model/predict", content=p.read_bytes()).json()["top"], images))
        text = client.get("/metrics").text
    for one, shared in zip(alone, together):
        assert [e["label"] for e in one] == [e["label"] for e in shared]
        assert [e["probability"] for e in one] == pytest.approx([e["probability"] for e in shared], abs=1e-5)
    # 6 lone batches of 1, then the 6 concurrent ones in fewer batches: a lone request runs at once
    # (it waits for company only when others are coming), so the first one or two of them may go alone.
    batches = metric(text, "zoo_batch_size_count", model="model")
    assert 7 <= batches <= 11 and metric(text, "zoo_batch_size_sum", model="model") == 12
    assert 6 <= metric(text, "zoo_batch_size_bucket", model="model", le="1.0") < 12


def test_bad_bodies_get_400_413_and_one_line_reasons(onnx_file, image_bytes):
    _, client = client_for(onnx_file, max_body=50_000, max_pixels=36 * 36)
    big = io.BytesIO()
    Image.new("RGB", (40, 40)).save(big, "PNG")
    with client:
        empty = client.post("/v1/models/model/predict", content=b"")
        text = client.post("/v1/models/model/predict", content=b"not an image at all")
        truncated = client.post("/v1/models/model/predict", content=image_bytes[: len(image_bytes) // 2])
        too_large = client.post("/v1/models/model/predict", content=b"x" * 60_000)
        bomb = client.post("/v1/models/model/predict", content=big.getvalue())
        no_file = client.post("/v1/models/model/predict", data={"note": "no file here"},
                              headers={"content-type": "multipart/form-data; boundary=x"})
        bad_k = client.post("/v1/models/model/predict?top_k=zero", content=image_bytes)
    assert empty.status_code == 400 and "empty" in empty.json()["error"]
    assert text.status_code == 400 and "not an image" in text.json()["error"]
    assert truncated.status_code == 400 and "decoded" in truncated.json()["error"]
    assert too_large.status_code == 413 and "50,000" in too_large.json()["error"]
    assert bomb.status_code == 413 and "40x40" in bomb.json()["error"] and "--max-pixels" in bomb.json()["error"]
    assert no_file.status_code == 400
    assert bad_k.status_code == 400 and "top_k" in bad_k.json()["error"]
    for answer in (empty, text, truncated, too_large, bomb, bad_k):
        assert "\n" not in answer.json()["error"]


def test_v2_infer_metadata_and_tensor_checks(onnx_file):
    _, client = client_for(onnx_file)
    data = np.zeros((2, 3, 32, 32), dtype=np.float32)
    good = {"id": "r1", "inputs": [{"name": "input", "shape": [2, 3, 32, 32], "datatype": "FP32", "data": data.ravel().tolist()}]}
    with client:
        meta = client.get("/v2/models/model").json()
        ready = client.get("/v2/models/model/ready")
        out = client.post("/v2/models/model/infer", json=good).json()
        wrong_shape = client.post("/v2/models/model/infer", json={"inputs": [{**good["inputs"][0], "shape": [2, 3, 16, 16]}]})
        wrong_type = client.post("/v2/models/model/infer", json={"inputs": [{**good["inputs"][0], "datatype": "INT64"}]})
        short = client.post("/v2/models/model/infer", json={"inputs": [{**good["inputs"][0], "data": [0.0] * 10}]})
        not_json = client.post("/v2/models/model/infer", content=b"{oops")
        unknown = client.post("/v2/models/nope/infer", json=good)
    assert meta["inputs"][0]["shape"] == [-1, 3, 32, 32] and meta["outputs"][0]["shape"] == [-1, 3]
    assert ready.status_code == 200 and ready.json()["ready"] is True
    assert out["id"] == "r1" and out["model_name"] == "model" and out["outputs"][0]["shape"] == [2, 3]
    assert len(out["outputs"][0]["data"]) == 6
    assert wrong_shape.status_code == 400 and "[-1, 3, 32, 32]" in wrong_shape.json()["error"]
    assert wrong_type.status_code == 400 and "FP32" in wrong_type.json()["error"]
    assert short.status_code == 400 and "needs 6144" in short.json()["error"]
    assert not_json.status_code == 400
    assert unknown.status_code == 404 and "model" in unknown.json()["error"]


def test_probes_unknown_names_and_the_page(onnx_file):
    server, client = client_for(onnx_file)
    assert client.get("/readyz").status_code == 503 or not server.ready  # before start-up
    with client:
        assert client.get("/healthz").json() == {"status": "alive"}
        assert client.get("/readyz").json()["models"] == ["model"]
        assert client.post("/v1/models/other/predict", content=b"x").status_code == 404
        assert client.get("/v1/nothing").status_code == 404
        assert client.get("/v1/models/model/predict").status_code == 405
        page = client.get("/")
        models = client.get("/v1/models").json()["models"]
    assert page.status_code == 200 and "<select" in page.text and "default-src 'self'" in page.headers["content-security-policy"]
    assert models[0]["labels"] == ["red", "green", "blue"] and models[0]["input_size"] == [3, 32, 32]
    assert "access-control-allow-origin" not in page.headers


def test_token_is_required_on_the_api_but_not_on_probes(onnx_file, image_bytes):
    _, client = client_for(onnx_file, token="s3cret")
    with client:
        missing = client.post("/v1/models/model/predict", content=image_bytes)
        wrong = client.post("/v1/models/model/predict", content=image_bytes, headers={"Authorization": "Bearer nope"})
        right = client.post("/v1/models/model/predict", content=image_bytes, headers={"Authorization": "Bearer s3cret"})
        metrics = client.get("/metrics")
        probe = client.get("/healthz")
    assert missing.status_code == 401 and "Bearer" in missing.json()["error"]
    assert wrong.status_code == 401 and metrics.status_code == 401
    assert right.status_code == 200 and probe.status_code == 200


def test_cors_only_when_asked(onnx_file):
    _, client = client_for(onnx_file, cors_origins=["http://app.example"])
    with client:
        answer = client.get("/v1/models", headers={"Origin": "http://app.example"})
    assert answer.headers["access-control-allow-origin"] == "http://app.example"


def test_a_full_queue_answers_503_with_retry_after_at_once_and_timeouts_504(onnx_file, image_bytes):
    server, client = client_for(onnx_file, max_batch=1, max_wait_ms=0, queue_size=1, timeout=60)
    gate = threading.Event()
    with client:
        batcher = server.models["model"].batcher
        real = batcher.run
        entered = threading.Event()
        batcher.run = lambda batch: (entered.set(), gate.wait(60), real(batch))[2]
        post = lambda: client.post("/v1/models/model/predict", content=image_bytes)  # noqa: E731
        with ThreadPoolExecutor(2) as pool:
            running = pool.submit(post)
            assert entered.wait(60)  # the first request is inside session.run now, held there
            queued = pool.submit(post)
            while batcher.depth < 1:
                time.sleep(0.01)
            refused = post()  # answered while the model is still held busy: it did not wait
            gate.set()
            answers = [running.result(), queued.result()]
        server.config.timeout = 0.05
        gate.clear()
        late = post()
        gate.set()
        text = client.get("/metrics").text
    assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
    assert [a.status_code for a in answers] == [200, 200]
    assert late.status_code == 504
    assert metric(text, "zoo_request_errors_total", model="model", endpoint="predict", reason="queue_full") == 1
    assert metric(text, "zoo_request_errors_total", model="model", endpoint="predict", reason="timeout") == 1
    assert metric(text, "zoo_requests_total", model="model", endpoint="predict", code="200") == 2


def test_metrics_count_requests_errors_and_latency(onnx_file, image_bytes):
    _, client = client_for(onnx_file)
    with client:
        for _ in range(3):
            client.post("/v1/models/model/predict", content=image_bytes)
        client.post("/v1/models/model/predict", content=b"junk")
        client.post("/v1/models/ghost/predict", content=image_bytes)
        text = client.get("/metrics").text
    assert metric(text, "zoo_requests_total", model="model", endpoint="predict", code="200") == 3
    assert metric(text, "zoo_requests_total", model="model", endpoint="predict", code="400") == 1
    assert metric(text, "zoo_requests_total", model="_unknown", endpoint="predict", code="404") == 1
    assert metric(text, "zoo_request_errors_total", model="model", endpoint="predict", reason="bad_image") == 1
    assert metric(text, "zoo_request_latency_seconds_count", model="model", endpoint="predict") == 3
    assert metric(text, "zoo_queue_depth", model="model") == 0


def test_a_file_without_zoo_metadata_is_served_with_generic_names(exported, tmp_path, image_bytes):
    import onnx

    proto = onnx.load(str(exported["onnx"]))
    del proto.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(proto, str(bare))
    _, client = client_for(str(bare))
    with client:
        info = client.get("/v1/models").json()["models"][0]
        answer = client.post("/v1/models/bare/predict", content=image_bytes).json()
    assert info["generic"] is True and set(info["guessed"]) == {"mean", "std", "labels"}
    assert answer["generic"] is True and answer["top"][0]["label"] in {"0", "1", "2"}


def test_model_names_come_from_files_or_name_equals_file_and_must_be_distinct(tmp_path):
    from zoo.runtime.errors import RuntimeInputError
    from zoo.runtime.serve.models import parse_model_args

    assert parse_model_args(["a/cats.onnx", "dogs=b/model.onnx"]) == [("cats", Path("a/cats.onnx")), ("dogs", Path("b/model.onnx"))]
    with pytest.raises(RuntimeInputError, match="two models are named 'model'"):
        parse_model_args(["a/model.onnx", "b/model.onnx"])
    with pytest.raises(RuntimeInputError, match="not usable in a URL"):
        parse_model_args(["bad name=b/model.onnx"])
