"""deploy/kserve: the manifests parse, and their port, protocol and health paths are the server's own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

KSERVE = Path(__file__).resolve().parents[2] / "deploy" / "kserve"


def manifest(name: str) -> dict:
    text = (KSERVE / name).read_text()
    try:
        import yaml
    except ImportError:  # the files are YAML in JSON's syntax: drop the comment lines and read them as JSON
        return json.loads("\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")))
    return yaml.safe_load(text)


@pytest.fixture(scope="module")
def runtime():
    return manifest("servingruntime.yaml")


def test_the_serving_runtime_speaks_v2_on_the_port_it_probes(runtime, exported):
    import click

    from zoo.runtime.cli import serve_command
    from zoo.runtime.serve import ServeConfig, load_models
    from zoo.runtime.serve.app import Server

    spec = runtime["spec"]
    assert runtime["kind"] == "ServingRuntime" and spec["protocolVersions"] == ["v2"]
    assert {"name": "onnx", "version": "1", "autoSelect": True} in spec["supportedModelFormats"]
    (container,) = spec["containers"]
    assert container["command"] == ["zoo-runtime", "serve"]
    args = container["args"]
    port = int(args[args.index("--port") + 1])
    assert [p["containerPort"] for p in container["ports"]] == [port]
    assert container["readinessProbe"]["httpGet"]["port"] == container["livenessProbe"]["httpGet"]["port"] == port
    assert runtime["metadata"]["annotations"]["prometheus.kserve.io/port"] == str(port)
    # the arguments are ones the command accepts
    ctx = serve_command.make_context("serve", list(args))
    assert ctx.params["host"] == "0.0.0.0" and ctx.params["port"] == port
    with pytest.raises(click.UsageError):
        serve_command.make_context("serve", [*args, "--no-such-option"])
    # the probes and the metrics path answer on the server itself
    from starlette.testclient import TestClient

    server = Server(load_models([f"model={exported['onnx']}"], provider="cpu"), ServeConfig())
    with TestClient(server.app()) as client:
        ready = client.get(container["readinessProbe"]["httpGet"]["path"])
        live = client.get(container["livenessProbe"]["httpGet"]["path"])
        metrics = client.get(runtime["metadata"]["annotations"]["prometheus.kserve.io/path"])
        infer = client.get("/v2/models/model")  # the v2 model name is the one given as NAME= in args
    assert ready.status_code == live.status_code == metrics.status_code == infer.status_code == 200
    assert args[0].startswith("model=") and infer.json()["name"] == "model"


def test_the_inference_service_uses_the_runtime(runtime):
    service = manifest("inferenceservice.yaml")
    predictor = service["spec"]["predictor"]
    assert predictor["model"]["runtime"] == runtime["metadata"]["name"]
    assert predictor["model"]["protocolVersion"] in runtime["spec"]["protocolVersions"]
    assert predictor["model"]["modelFormat"]["name"] == runtime["spec"]["supportedModelFormats"][0]["name"]
    assert predictor["minReplicas"] >= 2  # replicas behind the orchestrator, not one process
