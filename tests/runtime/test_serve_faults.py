"""zoo serve under faults and overload: every answer JSON, every refusal counted, failures noticed."""

from __future__ import annotations

import asyncio
import io
import signal
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from zoo.runtime.serve import ServeConfig, load_models
from zoo.runtime.serve.app import Server

from .test_serve import metric

STAGES = ("receive", "decode", "resize", "queue_wait", "batch_assembly", "inference", "encode", "send")


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


def hold(batcher):
    """Make the model wait on a gate; returns (gate, entered)."""
    gate, entered, real = threading.Event(), threading.Event(), batcher.run
    batcher.run = lambda batch: (entered.set(), gate.wait(60), real(batch))[2]
    return gate, entered


def wait_until(condition, what: str) -> None:
    for _ in range(6000):
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


def test_v2_data_that_is_not_a_finite_float32_is_a_400_naming_the_input(onnx_file):
    _, client = client_for(onnx_file)
    values = ["0.5"] * (3 * 32 * 32)
    with client:
        answers = {}
        for bad in ("NaN", "Infinity", "-Infinity", "1e39"):
            data = ",".join([bad] + values[1:])
            body = ('{"inputs": [{"name": "pixels", "shape": [1, 3, 32, 32], "datatype": "FP32", "data": [%s]}]}' % data)
            answers[bad] = client.post("/v2/models/model/infer", content=body.encode(),
                                       headers={"content-type": "application/json"})
        text = client.get("/metrics").text
    for bad, answer in answers.items():
        assert answer.status_code == 400, bad
        assert answer.headers["content-type"] == "application/json"
        assert "'pixels'" in answer.json()["error"] and "finite" in answer.json()["error"]
    assert metric(text, "zoo_request_errors_total", model="model", endpoint="infer", reason="bad_tensor") == 4


def test_overload_every_refusal_is_json_with_retry_after_and_counted(onnx_file, image_bytes):
    server, client = client_for(onnx_file, max_batch=1, max_wait_ms=0, queue_size=3, max_decoding=2)
    with client:
        gate, entered = hold(server.models["model"].batcher)
        post = lambda _: client.post("/v1/models/model/predict", content=image_bytes)  # noqa: E731
        with ThreadPoolExecutor(16) as pool:
            pending = [pool.submit(post, i) for i in range(16)]
            assert entered.wait(60)
            wait_until(lambda: sum(f.done() for f in pending) >= 12, "the refusals")  # while the model is held
            gate.set()
            answers = [f.result() for f in pending]
        text = client.get("/metrics").text
    codes = [a.status_code for a in answers]
    refused = [a for a in answers if a.status_code == 503]
    assert set(codes) == {200, 503} and len(refused) >= 12
    for answer in refused:
        assert answer.headers["content-type"] == "application/json" and answer.headers["retry-after"] == "1"
        assert "busy" in answer.json()["error"]
    assert metric(text, "zoo_requests_total", model="model", endpoint="predict", code="503") == len(refused)
    assert metric(text, "zoo_http_responses_total", code="503") == len(refused)
    assert metric(text, "zoo_http_responses_total", code="200") == codes.count(200)


def test_the_servers_own_limits_replace_uvicorns_plain_text_503s(onnx_file):
    from zoo.runtime.serve.server import uvicorn_server

    server = Server(load_models([onnx_file], provider="cpu"), ServeConfig())
    assert uvicorn_server(server, server.config).config.limit_concurrency is None


def test_requests_beyond_the_decode_limit_are_refused_before_their_body_is_decoded(onnx_file, image_bytes, monkeypatch):
    from zoo.runtime.serve import handlers

    started, release, real = [], threading.Event(), handlers.decode_rows

    def slow(*args):
        started.append(1)
        release.wait(60)
        return real(*args)

    monkeypatch.setattr(handlers, "decode_rows", slow)
    server, client = client_for(onnx_file, max_decoding=2, queue_size=64)
    with client:
        with ThreadPoolExecutor(2) as pool:
            held = [pool.submit(client.post, "/v1/models/model/predict", content=image_bytes) for _ in range(2)]
            wait_until(lambda: len(started) == 2, "two decodes")
            refused = client.post("/v1/models/model/predict", content=image_bytes)
            gauge = metric(client.get("/metrics").text, "zoo_decoding", model="model")
            release.set()
            answers = [f.result().status_code for f in held]
    assert refused.status_code == 503 and "decoded" in refused.json()["error"] and len(started) == 2
    assert gauge == 2 and answers == [200, 200] and server.inference.decoding["model"] == 0


def test_a_timeout_storm_leaves_the_queue_at_once(onnx_file, image_bytes):
    server, client = client_for(onnx_file, max_batch=1, max_wait_ms=0, queue_size=2, timeout=0.2)
    with client:
        batcher = server.models["model"].batcher
        gate, entered = hold(batcher)
        with ThreadPoolExecutor(3) as pool:
            first = pool.submit(client.post, "/v1/models/model/predict", content=image_bytes)
            assert entered.wait(60)
            late = [client.post("/v1/models/model/predict", content=image_bytes) for _ in range(4)]
            depth = batcher.depth
            server.config.timeout = 60
            after = pool.submit(client.post, "/v1/models/model/predict", content=image_bytes)
            wait_until(lambda: batcher.depth == 1, "the next request queued")
            gate.set()
            results = [first.result().status_code, after.result().status_code]
        text = client.get("/metrics").text
    assert [a.status_code for a in late] == [504] * 4 and depth == 0  # none left holding a place
    assert results == [504, 200]  # the held one timed out too; the next was admitted, not refused
    assert metric(text, "zoo_request_errors_total", model="model", endpoint="predict", reason="queue_full") == 0


def test_a_killed_batcher_is_restarted_and_readiness_says_so_meanwhile(onnx_file, image_bytes, caplog):
    server, client = client_for(onnx_file)
    with client:
        batcher = server.models["model"].batcher
        batcher.restart_delay = 0.5
        client.portal.call(_cancel, batcher)
        during = client.get("/readyz")
        wait_until(lambda: batcher.alive, "the restart")
        after = client.get("/readyz")
        answer = client.post("/v1/models/model/predict", content=image_bytes)
        text = client.get("/metrics").text
    assert during.status_code == 503 and "restarting" in during.json()["reason"]
    assert after.status_code == 200 and answer.status_code == 200
    assert metric(text, "zoo_batcher_restarts_total", model="model") == 1
    assert any("died" in r.getMessage() for r in caplog.records)


async def _cancel(batcher) -> None:
    batcher._task.cancel()
    await asyncio.sleep(0.05)


def test_short_outputs_are_a_500_naming_the_model(onnx_file, image_bytes):
    server, client = client_for(onnx_file)
    with client:
        batcher = server.models["model"].batcher
        real = batcher.run
        batcher.run = lambda batch: real(batch)[:-1]
        answer = client.post("/v1/models/model/predict", content=image_bytes)
        batcher.run = real
        again = client.post("/v1/models/model/predict", content=image_bytes)
    assert answer.status_code == 500 and "model returned 0 output rows" in answer.json()["error"]
    assert again.status_code == 200


def test_readiness_is_503_as_soon_as_draining_starts(onnx_file, image_bytes):
    from zoo.runtime.serve.server import uvicorn_server

    server, client = client_for(onnx_file)
    with client:
        assert client.get("/readyz").status_code == 200
        uvicorn_server(server, server.config).handle_exit(signal.SIGTERM, None)
        ready = client.get("/readyz")
        v2 = client.get("/v2/health/ready")
        still = client.post("/v1/models/model/predict", content=image_bytes)
    assert ready.status_code == 503 and "draining" in ready.json()["reason"] and v2.status_code == 503
    assert still.status_code == 200  # requests that still arrive are answered


def test_timeout_counts_the_decode_too(onnx_file, image_bytes, monkeypatch):
    from zoo.runtime.serve import handlers

    real = handlers.decode_rows
    monkeypatch.setattr(handlers, "decode_rows", lambda *args: (time.sleep(0.5), real(*args))[1])
    server, client = client_for(onnx_file, timeout=0.1)
    with client:
        answer = client.post("/v1/models/model/predict", content=image_bytes)
        wait_until(lambda: server.inference.decoding["model"] == 0, "the decode place freed")
    assert answer.status_code == 504 and "timeout" in answer.json()["error"]


def test_every_stage_has_a_histogram_and_every_status_is_counted(onnx_file, image_bytes):
    _, client = client_for(onnx_file, token="t")
    auth = {"Authorization": "Bearer t"}
    with client:
        client.post("/v1/models/model/predict", content=image_bytes, headers=auth)
        client.get("/nowhere", headers=auth)
        client.post("/v1/models/model/predict", content=image_bytes)
        text = client.get("/metrics", headers=auth).text
    for stage in STAGES:
        assert metric(text, "zoo_stage_seconds_count", model="model", stage=stage) >= 1, stage
    assert metric(text, "zoo_http_responses_total", code="404") == 1
    assert metric(text, "zoo_http_responses_total", code="401") == 1


def test_a_failing_form_is_closed(onnx_file, monkeypatch):
    from starlette.datastructures import FormData

    closed, real = [], FormData.close

    async def close(self):
        closed.append(1)
        await real(self)

    monkeypatch.setattr(FormData, "close", close)
    _, client = client_for(onnx_file)
    with client:
        body = b'--xx\r\nContent-Disposition: form-data; name="note"\r\n\r\nno file\r\n--xx--\r\n'
        answer = client.post("/v1/models/model/predict", content=body,
                             headers={"content-type": "multipart/form-data; boundary=xx"})
    assert answer.status_code == 400 and closed == [1]


def test_decoding_leaves_the_warnings_filters_alone_and_drafts_big_jpegs(monkeypatch):
    from zoo.runtime.preprocess import Preprocessing
    from zoo.runtime.serve.decode import decode_image, decode_rows

    def boom(*args, **kwargs):
        raise AssertionError("warnings.catch_warnings is not thread-safe")

    monkeypatch.setattr(warnings, "catch_warnings", boom)
    grid = np.indices((512, 384)).sum(axis=0) % 64 * 4
    photo = io.BytesIO()
    Image.fromarray(np.stack([grid, grid[::-1], grid[:, ::-1]], -1).astype(np.uint8)).save(photo, "JPEG", quality=90)
    pre = Preprocessing(3, 32, 32, (0.5,) * 3, (0.5,) * 3)
    assert decode_image(photo.getvalue(), draft=(32, 32)).size == (48, 64)  # 1/8 scale, still >= 32 a side
    assert decode_image(photo.getvalue()).size == (384, 512)
    drafted = decode_rows(photo.getvalue(), pre)[0]
    exact = decode_rows(photo.getvalue(), pre, draft=False)[0]
    assert drafted.shape == exact.shape == (1, 3, 32, 32)
    assert float(np.abs(drafted - exact).mean()) < 0.1  # of a range of 2: the same picture


def test_a_model_with_a_fixed_batch_size_serves_partial_batches(tmp_path, image_bytes):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("GlobalAveragePool", ["input"], ["pooled"]), helper.make_node("Flatten", ["pooled"], ["logits"])],
        "fixed", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [4, 3, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [4, 3])])
    path = tmp_path / "fixed.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    _, client = client_for(str(path), max_batch=8)
    with client:
        one = client.post("/v1/models/fixed/predict", content=image_bytes)
        six = client.post("/v2/models/fixed/infer", json={"inputs": [
            {"name": "input", "shape": [6, 3, 8, 8], "datatype": "FP32", "data": [0.25] * (6 * 3 * 64)}]})
    assert one.status_code == 200 and len(one.json()["top"]) == 3
    assert six.status_code == 200 and six.json()["outputs"][0]["shape"] == [6, 3]
