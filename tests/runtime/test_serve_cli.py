"""``zoo serve`` as a user runs it: start-up refusals, a taken port, and a shutdown that answers everyone."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor

ZOO = [sys.executable, "-m", "zoo"]


def post(url: str, data: bytes) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_refuses_a_corrupt_or_missing_model_at_start_up_in_one_line(tmp_path):
    corrupt = tmp_path / "broken.onnx"
    corrupt.write_bytes(b"\x08\x07this is not a protobuf" * 20)
    for path, words in ((corrupt, "cannot load"), (tmp_path / "absent.onnx", "does not exist")):
        done = subprocess.run([*ZOO, "serve", str(path)], capture_output=True, text=True, timeout=120)
        assert done.returncode == 1 and words in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_a_taken_port_is_a_one_line_error(exported):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        done = subprocess.run([*ZOO, "serve", str(exported["onnx"]), "--port", str(port)],
                              capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and f"port {port}" in done.stderr and "already in use" in done.stderr


def test_sigterm_finishes_the_requests_in_flight_before_exiting(exported, start_server):
    images = sorted(exported["images"].rglob("*.png"))[:4]
    proc, url = start_server(str(exported["onnx"]), "--max-batch", "8", "--max-wait-ms", "1500")
    try:
        assert url.startswith("http://127.0.0.1:")
        with ThreadPoolExecutor(4) as pool:
            pending = [pool.submit(post, url + "v1/models/model/predict", p.read_bytes()) for p in images]
            received = False
            while not received:  # wait until the server has read all four bodies
                with urllib.request.urlopen(url + "metrics", timeout=30) as answer:
                    text = answer.read().decode()
                received = 'zoo_stage_seconds_count{model="model",stage="receive"} 4.0' in text
            proc.send_signal(signal.SIGTERM)
            answers = [p.result() for p in pending]
        # uvicorn re-raises the signal once it has shut down cleanly, as an unhandled SIGTERM would end
        assert proc.wait(timeout=60) in (0, -signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert [status for status, _ in answers] == [200] * 4
    assert all(body["top"][0]["label"] in {"red", "green", "blue"} for _, body in answers)


def _children(pid: int) -> list[int]:
    """The worker processes of ``pid`` (not multiprocessing's resource tracker)."""
    from pathlib import Path

    pids = [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    return [p for p in pids if b"resource_tracker" not in Path(f"/proc/{p}/cmdline").read_bytes()]


def test_two_workers_serve_on_one_port_and_shut_down_cleanly(exported, start_server):
    import os
    import time

    image = sorted(exported["images"].rglob("*.png"))[0].read_bytes()
    proc, url = start_server(str(exported["onnx"]), "--workers", "2", "--threads", "1")
    try:
        ready = 0
        while ready != 200:  # each worker opens its own model; the shared port answers once one is up
            try:
                with urllib.request.urlopen(url + "readyz", timeout=30) as answer:
                    ready = answer.status
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)
        workers = _children(proc.pid)
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda _: post(url + "v1/models/model/predict", image), range(8)))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert len(workers) == 2 and [status for status, _ in answers] == [200] * 8
    for pid in workers:  # no worker outlives the server
        assert not os.path.exists(f"/proc/{pid}") or "State:\tZ" in open(f"/proc/{pid}/status").read()


def test_accepted_connections_do_not_wait_for_delayed_acks():
    from zoo.runtime.serve import bind

    listening = bind("127.0.0.1", 0)
    with listening, socket.create_connection(listening.getsockname()):
        accepted, _ = listening.accept()
        with accepted:  # TCP_NODELAY: an answer's body is not held back until the client ACKs its headers
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
