"""``zoo serve`` against LitServe on one exported resnet34 (issue 21), servers alternating point by point.

    python -m venv /work/venv-litserve && /work/venv-litserve/bin/pip install litserve onnxruntime pillow numpy
    python benchmarks/serve_vs_litserve.py                      # concurrency 1, 8, 32; 200 requests a point; memory
    python benchmarks/serve_vs_litserve.py --model /tmp/r34/model.onnx --rounds 2 --phases compare

LitServe runs in its own virtualenv (``--litserve-python``) and is never a
dependency of zoo. Both servers load the same ``.onnx`` file in ONNX Runtime
with ``--threads`` intra-op threads and all graph optimisations, batch up to
``--max-batch`` requests with a ``--max-wait-ms`` wait, and preprocess alike:
RGB, bilinear resize to the model's 224x224 without crop, /255, the file's
mean/std (LitServe's ``decode_request`` below does zoo's steps in numpy).
zoo gets the JPEG's bytes as the body, LitServe the base64 JSON its
examples use. Clients are bounded (``concurrency`` threads, one keep-alive
connection each, ``--requests`` per point, ``--time-limit`` seconds at most)
and only 127.0.0.1 is contacted. Each point alternates the two servers in
``--rounds`` slices, so a change in the machine's load hits both alike; the
load average is printed beside each point.

``bare`` is the floor: in this process, the same JPEG decoded and
preprocessed by zoo.runtime and run by a bare ``InferenceSession.run`` with
the options zoo serve uses (``--threads``, no spinning), timed call by call
between the c=1 slices.

The memory phase sends ``--big`` concurrent uploads of one 12-megapixel JPEG
to zoo and reads the server's peak resident set (VmHWM) before and after.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load_test import load, summarise  # noqa: E402  (the same bounded client as the load test)

CIFAR = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10" / "train"
HOST = "127.0.0.1"

LITSERVE_APP = textwrap.dedent(
    '''
    import base64, io, json, sys
    import numpy as np, onnxruntime as ort, litserve as ls
    from PIL import Image

    MODEL, THREADS, MAX_BATCH, WAIT, PORT = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])

    class Api(ls.LitAPI):
        def setup(self, device):
            options = ort.SessionOptions()
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            options.intra_op_num_threads = THREADS
            self.session = ort.InferenceSession(MODEL, sess_options=options, providers=["CPUExecutionProvider"])
            meta = self.session.get_modelmeta().custom_metadata_map
            size = json.loads(meta["input_size"])
            self.size = (int(size[2]), int(size[1]))
            self.mean = np.asarray(json.loads(meta["mean"]), np.float32).reshape(-1, 1, 1)
            self.std = np.asarray(json.loads(meta["std"]), np.float32).reshape(-1, 1, 1)
            self.name = self.session.get_inputs()[0].name

        def decode_request(self, request):
            image = Image.open(io.BytesIO(base64.b64decode(request["image"]))).convert("RGB")
            if image.size != self.size:
                image = image.resize(self.size, Image.BILINEAR)
            x = np.asarray(image, dtype=np.uint8).transpose(2, 0, 1).astype(np.float32) / np.float32(255)
            return (x - self.mean) / self.std

        def batch(self, inputs):
            return np.stack(inputs)

        def predict(self, x):
            return self.session.run(None, {self.name: x})[0]

        def unbatch(self, output):
            return list(output)

        def encode_response(self, logits):
            z = np.exp(logits - logits.max())
            p = z / z.sum()
            top = np.argsort(-p)[:5]
            return {"top": [{"index": int(i), "probability": float(p[i])} for i in top]}

    if __name__ == "__main__":
        api = Api(max_batch_size=MAX_BATCH, batch_timeout=WAIT)
        ls.LitServer(api, accelerator="cpu", workers_per_device=1, timeout=120).run(
            host="127.0.0.1", port=PORT, generate_client_file=False, log_level="warning", num_api_servers=1)
    '''
)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def wait_ready(port: int, path: str, proc: subprocess.Popen, limit: float = 300) -> None:
    import http.client

    end = time.time() + limit
    while time.time() < end:
        if proc.poll() is not None:
            raise SystemExit(f"the server on {port} ended with status {proc.returncode}")
        try:
            conn = http.client.HTTPConnection(HOST, port, timeout=5)
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"the server on {port} did not become ready")


class Running:
    """A server subprocess, stopped on exit; ``path`` and ``body`` are what its clients send."""

    def __init__(self, cmd: list[str], port: int, ready: str, path: str, body: bytes, kind: str) -> None:
        # a session of its own, so its worker processes are stopped with it (LitServe's outlive a plain terminate)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self.port, self.path, self.body, self.kind = port, path, body, kind
        wait_ready(port, ready, self.proc)

    def status(self, key: str) -> float:
        text = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(key + r":\s+(\d+)", text).group(1)) / 1024

    def pause(self) -> None:
        """Stop the server's whole process group (SIGSTOP): no CPU at all until :meth:`resume`."""
        import signal

        os.killpg(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        import signal

        os.killpg(self.proc.pid, signal.SIGCONT)

    def idle_cpu(self, seconds: float = 5.0) -> float:
        """Cores the idle server's process group uses (user + system time over ``seconds``)."""
        before = self._group_cpu()
        time.sleep(seconds)
        return round((self._group_cpu() - before) / seconds, 3)

    def _group_cpu(self) -> float:
        total = 0
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                if os.getpgid(int(pid)) != self.proc.pid:
                    continue
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, ProcessLookupError):
                continue
            total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")

    def __enter__(self) -> "Running":
        return self

    def __exit__(self, *exc: Any) -> None:
        import signal

        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        time.sleep(1)
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # any worker left behind in the group
        except ProcessLookupError:
            pass


def zoo_server(model: Path, args: argparse.Namespace, *extra: str) -> Running:
    port = free_port()
    cmd = [sys.executable, "-m", "zoo", "serve", str(model), "--port", str(port), "--threads", str(args.threads),
           "--max-batch", str(args.max_batch), "--max-wait-ms", str(args.max_wait_ms), "--timeout", "120", *extra]
    return Running(cmd, port, "/readyz", "/v1/models/model/predict", args.jpeg, "zoo")


def litserve_server(model: Path, args: argparse.Namespace, app: Path) -> Running:
    port = free_port()
    cmd = [args.litserve_python, str(app), str(model), str(args.threads), str(args.max_batch),
           str(args.max_wait_ms / 1000), str(port)]
    body = json.dumps({"image": base64.b64encode(args.jpeg).decode()}).encode()
    return Running(cmd, port, "/health", "/predict", body, "litserve")


def bare_ms(model: Path, jpeg: bytes, threads: int, n: int) -> list[float]:
    """Decode + preprocess with zoo.runtime, then a bare session.run: the floor for one request."""
    from zoo.runtime.model import OnnxModel
    from zoo.runtime.serve.decode import image_rows

    global _BARE
    if "_BARE" not in globals():
        _BARE = OnnxModel(model, provider="cpu", threads=threads, spinning=False)  # the session zoo serve opens
        for _ in range(3):
            _BARE.session.run(None, {_BARE.input_name: image_rows(jpeg, _BARE.preprocessing)})
    out = []
    for _ in range(n):
        start = time.perf_counter()
        _BARE.session.run(None, {_BARE.input_name: image_rows(jpeg, _BARE.preprocessing)})
        out.append(1000 * (time.perf_counter() - start))
    return out


def compare(servers: list[Running], concurrency: int, args: argparse.Namespace, model: Path) -> dict[str, Any]:
    pooled: dict[str, dict[int, list[float]]] = {s.kind: {} for s in servers}
    seconds = {s.kind: 0.0 for s in servers}
    bare: list[float] = []
    for _ in range(args.rounds):
        for server in servers:
            # the other server is stopped (SIGSTOP) while this one is measured: idle, LitServe's worker still
            # polls its queue (about 0.1 of a core here), which would be taken from the server under test
            for other in servers:
                if other is not server:
                    other.pause()
            try:
                row = load(server.port, server.body, concurrency, max(1, args.requests // args.rounds),
                           args.time_limit / args.rounds, path=server.path,
                           kind="image/jpeg" if server.kind == "zoo" else "application/json")
            finally:
                for other in servers:
                    other.resume()
            seconds[server.kind] += row["seconds"]
            for status, values in row["_latencies"].items():
                pooled[server.kind].setdefault(status, []).extend(values)
        if concurrency == 1:
            for server in servers:  # the floor is measured with both servers stopped, like each server alone
                server.pause()
            try:
                bare += bare_ms(model, args.jpeg, args.threads, max(5, args.requests // args.rounds // 4))
            finally:
                for server in servers:
                    server.resume()
    rows = {kind: {k: v for k, v in summarise(concurrency, pooled[kind], seconds[kind]).items() if not k.startswith("_")}
            for kind in pooled}
    out: dict[str, Any] = {"concurrency": concurrency, **rows, "load": [round(v, 2) for v in os.getloadavg()]}
    zoo, lit = rows["zoo"], rows["litserve"]
    out["zoo_over_litserve_throughput"] = round(zoo["throughput_rps"] / max(lit["throughput_rps"], 1e-9), 2)
    if zoo["p50_ms"] and lit["p50_ms"]:
        out["litserve_p50_over_zoo_p50"] = round(lit["p50_ms"] / zoo["p50_ms"], 2)
        out["litserve_p99_over_zoo_p99"] = round(lit["p99_ms"] / zoo["p99_ms"], 2)
    if bare:
        out["bare_p50_ms"] = round(statistics.median(bare), 1)
    return out


def stage_means(port: int) -> dict[str, float]:
    """Mean milliseconds per stage from zoo's /metrics (zoo_stage_seconds sums over counts)."""
    import http.client

    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    sums = dict(re.findall(r'zoo_stage_seconds_sum\{model="model",stage="(\w+)"\} (\S+)', text))
    counts = dict(re.findall(r'zoo_stage_seconds_count\{model="model",stage="(\w+)"\} (\S+)', text))
    return {k: round(1000 * float(sums[k]) / float(counts[k]), 3) for k in sums if float(counts.get(k, 0))}


def big_jpeg() -> bytes:
    """One 4032x3024 (12.2-megapixel) photo-like JPEG: smooth colour fields and fine texture."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:3024, 0:4032].astype(np.float32)
    base = np.stack([128 + 100 * np.sin(x / 300), 128 + 100 * np.cos(y / 250), 128 + 60 * np.sin((x + y) / 500)], -1)
    pixels = np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=85)
    return out.getvalue()


def memory(model: Path, args: argparse.Namespace) -> dict[str, Any]:
    photo = big_jpeg()
    args.jpeg, small = photo, args.jpeg
    try:
        with zoo_server(model, args, "--max-decoding", str(args.max_decoding)) as server:
            # warm-up at full batches first, so ONNX Runtime's arena for a batch of --max-batch is already
            # there and the growth measured is what the uploads hold
            load(server.port, small, args.max_batch, 3 * args.max_batch, 300, path=server.path)
            before = server.status("VmHWM")
            row = load(server.port, photo, args.big, args.big, args.time_limit, path=server.path)
            peak = server.status("VmHWM")
    finally:
        args.jpeg = small
    # what the admitted requests can hold: each body twice (read buffer and joined bytes) and its draft-decoded
    # pixels (1/8 scale, RGB), plus the queue's preprocessed tensors
    tensor_mb = 3 * 224 * 224 * 4 / 2**20
    bound = args.max_decoding * (2 * len(photo) / 2**20 + 3 * 504 * 378 / 2**20) + 64 * tensor_mb
    return {"memory": {"uploads": args.big, "jpeg_mb": round(len(photo) / 2**20, 2), "megapixels": 12.19,
                       "max_decoding": args.max_decoding, "peak_rss_before_mb": round(before, 1),
                       "peak_rss_after_mb": round(peak, 1), "growth_mb": round(peak - before, 1),
                       "bound_mb": round(bound, 1), "answers": row["by_status"], "p50_ms": row["p50_ms"]},
            "load": [round(v, 2) for v in os.getloadavg()]}


def _model(path: str | None) -> Path:
    if path:
        return Path(path)
    out = Path(tempfile.gettempdir()) / "zoo-serve-bench"
    if not (out / "model.onnx").is_file():
        subprocess.run([sys.executable, "-m", "zoo", "export", "resnet34", "--num-classes", "10", "--format", "onnx",
                        "--out", str(out)], check=True)
    return out / "model.onnx"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="an .onnx file (default: resnet34, 10 classes, exported with zoo into /tmp)")
    parser.add_argument("--litserve-python", default="/work/venv-litserve/bin/python")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--requests", type=int, default=200, help="requests per point and server")
    parser.add_argument("--rounds", type=int, default=4, help="alternating slices per point")
    parser.add_argument("--time-limit", type=float, default=240.0, help="seconds per point and server at most")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-batch", type=int, default=32)
    parser.add_argument("--max-wait-ms", type=float, default=10.0)
    parser.add_argument("--max-decoding", type=int, default=32)
    parser.add_argument("--big", type=int, default=200, help="concurrent 12-megapixel uploads in the memory phase")
    parser.add_argument("--phases", default="compare,memory")
    args = parser.parse_args()
    images = sorted(CIFAR.rglob("*.jpg"))
    if not images:
        raise SystemExit(f"no CIFAR-10 images under {CIFAR}")
    args.jpeg = images[0].read_bytes()
    model = _model(args.model)
    print(json.dumps({"model": str(model), "load_before": os.getloadavg()}), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        if "compare" in args.phases:
            app = Path(tmp) / "litserve_app.py"
            app.write_text(LITSERVE_APP)
            with zoo_server(model, args) as zoo, litserve_server(model, args, app) as lit:
                for server in (zoo, lit):  # warm-up: the first batches allocate ONNX Runtime's arenas
                    load(server.port, server.body, 4, 16, 120, path=server.path,
                         kind="image/jpeg" if server.kind == "zoo" else "application/json")
                print(json.dumps({"idle_cores": {s.kind: s.idle_cpu() for s in (zoo, lit)}}), flush=True)
                for concurrency in args.concurrency:
                    row = compare([zoo, lit], concurrency, args, model)
                    row["zoo_stage_mean_ms_so_far"] = stage_means(zoo.port)
                    print(json.dumps(row), flush=True)
        if "memory" in args.phases:
            print(json.dumps(memory(model, args)), flush=True)
    print(json.dumps({"load_after": os.getloadavg()}), flush=True)


if __name__ == "__main__":
    threading.excepthook = lambda info: print(f"client thread failed: {info.exc_value!r}", file=sys.stderr)
    main()
