"""Load test of ``zoo serve`` on the loopback address (issue 14): dynamic batching against --max-batch 1.

    python benchmarks/load_test.py                     # resnet34, concurrency 1, 8, 32; overload; 10,000-request soak
    python benchmarks/load_test.py --model m.onnx --requests 200 --no-soak

A bounded client: ``concurrency`` threads, each with one keep-alive
connection, send a CIFAR-10 JPEG until ``requests`` answers have come back or
``time_limit`` seconds have passed, whichever is first. Only 127.0.0.1 is
ever contacted. Each phase starts its own server and reports throughput,
p50/p99 latency and the answers by status. The overload phase sends more
concurrent requests than the queue holds, to show the extra ones get a fast
503; the soak phase samples the server's resident memory over 10,000 requests.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

CIFAR = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10" / "train"
HOST = "127.0.0.1"


class Server:
    """``zoo serve MODEL ARGS`` on a free loopback port, stopped on exit."""

    def __init__(self, model: Path, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "zoo", "serve", str(model), "--host", HOST, "--port", "0", *args],
                                     stderr=subprocess.PIPE, text=True)
        for line in self.proc.stderr:
            found = re.search(r":(\d+)/ ", line)
            if found:
                self.port = int(found.group(1))
                break
        else:
            raise SystemExit("zoo serve did not start")
        threading.Thread(target=self.proc.stderr.read, daemon=True).start()  # keep its pipe drained

    def rss_mb(self) -> float:
        text = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+)", text).group(1)) / 1024

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=120)


def load(port: int, body: bytes, concurrency: int, requests: int, time_limit: float, on_progress: Any = None,
         path: str = "/v1/models/model/predict", kind: str = "image/jpeg") -> dict[str, Any]:
    """Send ``requests`` POSTs of ``body`` to ``path`` from ``concurrency`` threads (stopping at ``time_limit`` s)."""
    lock = threading.Lock()
    sent = [0]
    latencies: dict[int, list[float]] = {}
    deadline = time.perf_counter() + time_limit

    def worker() -> None:
        conn = http.client.HTTPConnection(HOST, port, timeout=120)
        while True:
            with lock:
                if sent[0] >= requests or time.perf_counter() > deadline:
                    break
                sent[0] += 1
                number = sent[0]
            start = time.perf_counter()
            try:
                conn.request("POST", path, body=body, headers={"Content-Type": kind})
                answer = conn.getresponse()
                answer.read()
                status = answer.status
                if answer.getheader("connection", "").lower() == "close":
                    conn.close()
            except (OSError, http.client.HTTPException):
                status = 0  # no answer at all: counted apart from any HTTP status
                conn.close()
                conn = http.client.HTTPConnection(HOST, port, timeout=120)
            with lock:
                latencies.setdefault(status, []).append(time.perf_counter() - start)
            if on_progress and number % 1000 == 0:
                on_progress(number)
        conn.close()

    start = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return summarise(concurrency, latencies, time.perf_counter() - start)


def summarise(concurrency: int, latencies: dict[int, list[float]], elapsed: float) -> dict[str, Any]:
    """Throughput, p50/p99 of the successful answers, counts by status, how fast the 503s came."""
    ok = sorted(latencies.get(200, []))
    out: dict[str, Any] = {
        "concurrency": concurrency, "answers": sum(len(v) for v in latencies.values()), "seconds": round(elapsed, 2),
        "throughput_rps": round(len(ok) / elapsed, 2),
        "p50_ms": round(1000 * statistics.median(ok), 1) if ok else None,
        "p99_ms": round(1000 * ok[min(len(ok) - 1, int(0.99 * len(ok)))], 1) if ok else None,
        "by_status": {str(k): len(v) for k, v in sorted(latencies.items())},
    }
    refused = sorted(latencies.get(503, []))
    if refused:
        out["p50_503_ms"] = round(1000 * statistics.median(refused), 1)
        out["p99_503_ms"] = round(1000 * refused[min(len(refused) - 1, int(0.99 * len(refused)))], 1)
    out["_latencies"] = latencies
    return out


def compare(servers: dict[str, "Server"], body: bytes, concurrency: int, requests: int, rounds: int, time_limit: float) -> dict[str, Any]:
    """Alternate the servers in ``rounds`` short runs, so a change in the machine's load hits both alike."""
    pooled: dict[str, dict[int, list[float]]] = {label: {} for label in servers}
    seconds = dict.fromkeys(servers, 0.0)
    for _ in range(rounds):
        for label, server in servers.items():
            row = load(server.port, body, concurrency, max(1, requests // rounds), time_limit / rounds)
            seconds[label] += row["seconds"]
            for status, values in row["_latencies"].items():
                pooled[label].setdefault(status, []).extend(values)
    return {label: summarise(concurrency, pooled[label], seconds[label]) for label in servers}


def _public(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if not k.startswith("_")}


def _model(path: str | None, tmp: Path) -> Path:
    if path:
        return Path(path)
    import torch

    import zoo
    from zoo import checkpoint
    from zoo.export.onnx_export import export_onnx

    torch.manual_seed(0)
    model = zoo.create_model("resnet34", num_classes=10).eval()
    return export_onnx(model, checkpoint.make_config(model), tmp, batch_size=2, real_images=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="an .onnx file (default: resnet34 with random weights, exported now)")
    parser.add_argument("--requests", type=int, default=400, help="requests per phase")
    parser.add_argument("--time-limit", type=float, default=120.0, help="seconds per phase at most")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--max-batch", type=int, default=32)
    parser.add_argument("--max-wait-ms", type=float, default=10.0)
    parser.add_argument("--queue-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--soak", type=int, default=10_000, help="requests in the memory soak (0: none)")
    parser.add_argument("--soak-model", help="an .onnx file for the soak (default: the model); the server's code path is the same")
    parser.add_argument("--rounds", type=int, default=4, help="alternations of the two servers per concurrency")
    parser.add_argument("--phases", default="compare,overload,soak", help="comma-separated: compare, overload, soak")
    args = parser.parse_args()
    phases = set(args.phases.split(","))
    body = sorted(CIFAR.rglob("*.jpg"))[0].read_bytes() if CIFAR.is_dir() else None
    if body is None:
        raise SystemExit(f"no CIFAR-10 images under {CIFAR}")
    print(json.dumps({"load_before": os.getloadavg()}), flush=True)
    common = ["--queue-size", str(args.queue_size), "--threads", str(args.threads), "--timeout", "120"]
    with tempfile.TemporaryDirectory() as tmp:
        model = _model(args.model, Path(tmp))
        if "compare" in phases:
            dynamic = ["--max-batch", str(args.max_batch), "--max-wait-ms", str(args.max_wait_ms)]
            with Server(model, *dynamic, *common) as fast, Server(model, "--max-batch", "1", *common) as single:
                servers = {"dynamic": fast, "batch1": single}
                for server in servers.values():
                    load(server.port, body, 4, 8, 60)  # warm-up
                for c in args.concurrency:
                    rows = compare(servers, body, c, args.requests if c > 1 else max(20, args.requests // 8), args.rounds,
                                   args.time_limit)
                    ratio = rows["dynamic"]["throughput_rps"] / max(rows["batch1"]["throughput_rps"], 1e-9)
                    print(json.dumps({**{k: _public(v) for k, v in rows.items()}, "dynamic_over_batch1": round(ratio, 2),
                                      "load": os.getloadavg()}), flush=True)
        # overload: six times as many concurrent requests as the queue holds
        if "overload" in phases:
            with Server(model, "--max-batch", str(args.max_batch), "--max-wait-ms", str(args.max_wait_ms),
                        "--queue-size", "8", "--threads", str(args.threads)) as server:
                print(json.dumps({"overload_queue8": _public(load(server.port, body, 48, args.requests, args.time_limit))}), flush=True)
        if args.soak and "soak" in phases:
            soak_model = Path(args.soak_model) if args.soak_model else model
            with Server(soak_model, "--max-batch", str(args.max_batch), "--max-wait-ms", str(args.max_wait_ms), *common) as server:
                load(server.port, body, 8, 64, 60)
                samples = [("start", round(server.rss_mb(), 1))]
                progress = lambda n: samples.append((n, round(server.rss_mb(), 1)))  # noqa: E731
                row = load(server.port, body, 32, args.soak, 3600, on_progress=progress)
                samples.append(("end", round(server.rss_mb(), 1)))
                print(json.dumps({"soak": _public(row), "rss_mb": samples}), flush=True)
    print(json.dumps({"load_after": os.getloadavg()}), flush=True)


if __name__ == "__main__":
    main()
