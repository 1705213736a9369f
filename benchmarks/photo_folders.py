"""Folders of photo-sized JPEGs, and what zoo's commands cost on them (each run a child process).

``make`` writes ``OUT/<class>/NNNNN.jpg`` from CIFAR-10 cats and dogs (../shared),
each upscaled to WxH with bicubic filtering and fine Gaussian noise added, so
that JPEG keeps them photo-sized (1024x768: about 190 KB, like a phone photo
scaled down; 4032x3024: a phone's 12 megapixels). Folders go under /tmp, never
the repository.

``run`` measures ``zoo finetune`` (frozen default, first run with an empty
backbone cache and a cached run), ``zoo train`` (streamed, augmented),
``zoo evaluate`` and ``zoo predict`` on such a folder: the peak RSS of the child
(``os.wait4``'s ``ru_maxrss``: the largest process of the tree, so a DataLoader
worker counts on its own), wall time, images/s, the CPU time the child used
per wall second, and the share of time spent decoding (a separate timed
decode of a sample of the folder at the model's input size, over the run's
wall time per image). ``--baseline /work/main`` runs the same commands with
``PYTHONPATH`` pointing at another checkout, alternating, in the same run.
The model is the registry's ``efficientnet_lite0`` with its pretrained weights.

    python benchmarks/photo_folders.py make --out /tmp/photos1k --count 1000 --size 1024x768
    python benchmarks/photo_folders.py run --data /tmp/photos1k --what finetune,train,evaluate,predict
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

CIFAR = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "cifar10" / "train"
CLASSES = ("cat", "dog")


def _one(job: tuple[str, str, int, int, int]) -> int:
    import numpy as np
    from PIL import Image

    src, dst, w, h, seed = job
    rng = np.random.default_rng(seed)
    with Image.open(src) as im:
        big = im.convert("RGB").resize((w, h), Image.BICUBIC)
    arr = np.asarray(big, dtype=np.int16)
    noise = rng.normal(0.0, 7.0, size=(h, w, 1)).astype(np.int16)  # grey grain, like a sensor's
    Image.fromarray(np.clip(arr + noise, 0, 255).astype(np.uint8)).save(dst, quality=88)
    return os.path.getsize(dst)


def make(out: Path, count: int, size: tuple[int, int], source: Path = CIFAR, procs: int = 2) -> dict:
    """Write ``count`` photo-sized JPEGs (half cats, half dogs) under ``out``; returns count and mean size."""
    w, h = size
    jobs = []
    for c, cls in enumerate(CLASSES):
        (out / cls).mkdir(parents=True, exist_ok=True)
        files = sorted((source / cls).glob("*.jpg"))
        n = count // len(CLASSES) + (1 if c < count % len(CLASSES) else 0)
        for i in range(n):
            dst = out / cls / f"{i:05d}.jpg"
            if not dst.exists():
                jobs.append((str(files[i % len(files)]), str(dst), w, h, c * 1_000_003 + i))
    sizes = []
    with ProcessPoolExecutor(procs) as pool:
        sizes = list(pool.map(_one, jobs, chunksize=16))
    total = sum(1 for _ in out.rglob("*.jpg"))
    mean_kb = (sum(sizes) / len(sizes) / 1024) if sizes else None
    return {"folder": str(out), "images": total, "written": len(jobs), "mean_kb": mean_kb}


# -- measuring -------------------------------------------------------------------


def child(cmd: list[str], env: dict[str, str], cwd: Path) -> dict:
    """Run ``cmd`` in ``cwd``; peak RSS from wait4, wall and CPU seconds, the lines worth keeping.

    ``cwd`` is outside every checkout: ``python -m zoo`` puts the working
    directory first on ``sys.path``, which would shadow ``PYTHONPATH``.
    """
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=cwd)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    keep = ("feature pass", "zoo: ", "Error", "epoch", "accuracy", "found", "bf16", "autocast")
    lines = [line.strip() for line in out.splitlines() if line.strip().startswith(keep)]
    return {"exit": os.waitstatus_to_exitcode(status), "wall_s": round(wall, 1),
            "peak_rss_mb": round(usage.ru_maxrss / 1024), "cpu_per_wall": round((usage.ru_utime + usage.ru_stime) / wall, 2),
            "lines": lines[-12:]}


def decode_seconds(folder: Path, size: tuple[int, int], sample: int = 100, pythonpath: str | None = None) -> float:
    """Seconds per image for zoo's decode at ``size`` (H, W), timed in a child with ``pythonpath``."""
    code = (
        "import sys,time,pathlib;from zoo.runtime.preprocess import read_uint8;"
        f"p=sorted(pathlib.Path({str(folder)!r}).rglob('*.jpg'))[:{sample}];[read_uint8(x,3,{tuple(size)!r}) for x in p[:5]];"
        "t=time.perf_counter();"
        f"[read_uint8(x,3,{tuple(size)!r}) for x in p];print((time.perf_counter()-t)/len(p))"
    )
    env = dict(os.environ, PYTHONPATH=pythonpath or os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True,
                         cwd=tempfile.gettempdir())
    return float(out.stdout.strip().splitlines()[-1])


def commands(what: str, data: Path, work: Path, args: argparse.Namespace) -> list[tuple[str, list[str], int]]:
    """(name, argv, images processed) for each measured command."""
    zoo = [sys.executable, "-m", "zoo"]
    n = sum(1 for _ in data.rglob("*.jpg"))
    out = []
    ckpt = work / "ft"
    base = [*zoo, "finetune", args.arch, "--data", str(data), "--epochs", "3", "--val-split", "0.1",
            "--cache-mb", str(args.cache_mb), "--memory-mb", str(args.memory_mb), "--out", str(ckpt),
            "--overwrite"]  # the cached run follows the first into the same folder
    if "first" in what:  # the backbone cache of this tree is emptied first
        out.append(("finetune (first run)", base, n))
    if "cached" in what:
        out.append(("finetune (cached run)", base, n))
    if "train" in what:
        out.append(("train (streamed, augment)", [*zoo, "train", "cifar8_resnet", "--data", str(data), "--epochs", "1",
                                                  "--augment", "default", "--input-size", "3x64x64", "--no-cache",
                                                  "--out", str(work / "tr")], n))
    if ("evaluate" in what or "predict" in what) and not ("first" in what or "cached" in what):
        out.append(("finetune (for the checkpoint)", base, n))
    if "evaluate" in what:
        out.append(("evaluate", [*zoo, "evaluate", str(ckpt / "best"), "--data", str(data), "--split", "all"], n))
    if "predict" in what:
        out.append(("predict", [*zoo, "predict", str(ckpt / "best"), str(data), "--json"], n))
    return out


def measure(args: argparse.Namespace) -> list[dict]:
    data = Path(args.data)
    trees = [] if args.only_baseline else [("this", os.environ.get("PYTHONPATH", ""))]
    if args.baseline:
        trees.append(("baseline", args.baseline))
    rows = []
    size = tuple(int(v) for v in args.input.split("x"))
    for label, pythonpath in trees:
        per_image = decode_seconds(data, size, pythonpath=pythonpath)
        rows.append({"tree": label, "what": "decode only", "s_per_image": round(per_image, 5),
                     "img_s": round(1 / per_image, 1)})
        print(json.dumps(rows[-1]), flush=True)
    for round_ in range(args.rounds):
        for label, pythonpath in trees:
            work = Path(tempfile.mkdtemp(prefix=f"photo_{label}_", dir="/tmp"))
            cache = Path(tempfile.gettempdir()) / f"photo_backbones_{label}"  # kept between runs: "cached run"
            env = dict(os.environ, PYTHONPATH=pythonpath, ZOO_CACHE_DIR=str(cache))
            per_image = next(r["s_per_image"] for r in rows if r.get("tree") == label and r["what"] == "decode only")
            for name, cmd, n in commands(args.what, data, work, args):
                if name == "finetune (first run)":
                    shutil.rmtree(cache, ignore_errors=True)
                load = os.getloadavg()[0]
                result = child(cmd, env, work)
                fp = [line for line in result["lines"] if line.startswith("feature pass:") and "img/s" in line]
                row = {"tree": label, "round": round_, "what": name, "images": n, "load": round(load, 2), **result,
                       "img_s": round(n / result["wall_s"], 1) if result["wall_s"] else None,
                       "decode_share": round(min(1.0, per_image * n / result["wall_s"]), 2) if result["wall_s"] else None}
                if fp:
                    m = re.search(r"\(([\d,]+) img/s\)", fp[-1])
                    row["feature_img_s"] = int(m.group(1).replace(",", "")) if m else None
                rows.append(row)
                print(json.dumps(row), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    mk = sub.add_parser("make", help="write a folder of photo-sized JPEGs")
    mk.add_argument("--out", type=Path, required=True)
    mk.add_argument("--count", type=int, default=1000)
    mk.add_argument("--size", default="1024x768", help="WxH")
    mk.add_argument("--source", type=Path, default=CIFAR)
    mk.add_argument("--procs", type=int, default=2)
    rn = sub.add_parser("run", help="measure zoo's commands on a folder")
    rn.add_argument("--data", type=Path, required=True)
    rn.add_argument("--what", default="first,cached,train,evaluate,predict",
                    help="finetune's first run (empty backbone cache) and cached run, train, evaluate, predict")
    rn.add_argument("--arch", default="efficientnet_lite0")
    rn.add_argument("--input", default="224x224", help="the model's input HxW, for the decode-only timing")
    rn.add_argument("--cache-mb", type=float, default=1024)
    rn.add_argument("--memory-mb", type=float, default=512)
    rn.add_argument("--rounds", type=int, default=1)
    rn.add_argument("--baseline", default="", help="a PYTHONPATH to run the same commands with, alternating, e.g."
                    " /work/main:/work/main/plugins/zoo-efficientnet-lite")
    rn.add_argument("--only-baseline", action="store_true", help="run the --baseline tree alone")
    rn.add_argument("--json", type=Path, help="write the rows here too")
    args = parser.parse_args()
    if args.cmd == "make":
        if not str(args.out.resolve()).startswith(tempfile.gettempdir()):
            parser.error("write photo folders under /tmp, not into the repository")
        w, h = (int(v) for v in args.size.split("x"))
        print(json.dumps(make(args.out, args.count, (w, h), args.source, args.procs)))
        return
    rows = measure(args)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
