#!/usr/bin/env bash
# What only a CUDA machine can check, each against the CPU result, in one command:
#   1. zoo train net_res_deep with AMP and channels-last (cuda) vs plain fp32 (cpu)
#   2. a 1-process torchrun on nccl vs the same run without torchrun (cuda)
#   3. the feature engine: zoo finetune with cached features on cuda vs on the CPU
#   4. zoo serve on ONNX Runtime's CUDA execution provider vs the CPU provider
# Data: demo:cats (shipped with zoo), so it needs nothing but the checkout.
# Budget: under 8 minutes on one GPU: the steps' timeouts add up to 470 s.
# DEVICE_CHECK_EPOCHS (4) sets the training epochs (finetune runs twice as many), DEVICE_CHECK_MODEL
# (net_res_deep) the architecture trained.
# On a machine without CUDA it says so and exits 0.
#   usage: bash benchmarks/device_check.sh        (report on stdout; also $OUT/device_check.txt when OUT is set)
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD:$PWD/plugins/zoo-efficientnet-lite${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-python}
ZOO="$PY -m zoo"

# DEVICE_CHECK_REHEARSE=1 runs every step with cpu in place of cuda: it checks this script, not a GPU
# (DEVICE_CHECK_SLOW=N multiplies the timeouts, for a slow or loaded CPU).
GPU=cuda AMP=--amp
if [ "${DEVICE_CHECK_REHEARSE:-0}" = 1 ]; then
    GPU=cpu AMP=--no-amp
elif ! ls /dev/nvidia[0-9]* >/dev/null 2>&1; then  # no NVIDIA device at all: no need to import torch to know
    echo "device_check: no CUDA here (no /dev/nvidia* device); nothing to check"
    exit 0
elif ! $PY -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    echo "device_check: no CUDA here (torch.cuda.is_available() is False); nothing to check"
    exit 0
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/device_check.XXXXXX")
REPORT="$WORK/report.txt"
trap 'rm -rf "$WORK"' EXIT
say() { echo "$*" | tee -a "$REPORT"; }
# field FILE KEY.PATH: a value from a --json result (empty when the run failed)
field() { $PY -c 'import json, sys
try:
    value = json.load(open(sys.argv[1]))
    for key in sys.argv[2].split("."):
        value = value[key]
    print(round(value, 4) if isinstance(value, float) else value)
except Exception:
    print("")' "$1" "$2"; }
# run NAME SECONDS CMD...: the command's JSON to $WORK/NAME.json, its stderr to $WORK/NAME.err
run() {
    local name=$1 limit=$(($2 * ${DEVICE_CHECK_SLOW:-1}))
    shift 2
    local t0=$SECONDS
    timeout "$limit" "$@" >"$WORK/$name.json" 2>"$WORK/$name.err"
    local rc=$?
    echo "$((SECONDS - t0))" >"$WORK/$name.sec"
    [ "$rc" -eq 0 ] || say "  $name: exit $rc: $(tail -n 1 "$WORK/$name.err")"
    return "$rc"
}
acc() { field "$WORK/$1.json" best.val_acc; }
secs() { cat "$WORK/$1.sec" 2>/dev/null; }

say "device_check on $($PY -c 'import sys, torch; print(torch.cuda.get_device_name(0) if sys.argv[1] == "cuda" else "cpu (rehearsal)", "torch", torch.__version__)' "$GPU")"
say "$(uptime)"

# -- 1. training: AMP + channels-last on CUDA against fp32 on the CPU -------------------
EPOCHS=${DEVICE_CHECK_EPOCHS:-4}
MODEL=${DEVICE_CHECK_MODEL:-net_res_deep}
# AdamW at 1e-3: zoo train's SGD at 1e-2 diverges on net_res_deep (train loss 160 after one epoch), which would
# make every accuracy 50% and the comparison say nothing.
TRAIN=(train "$MODEL" --data demo:cats --epochs "$EPOCHS" --optimizer adamw --lr 1e-3 --seed 0 --no-plot -q --json)
run train_cuda 80 $ZOO "${TRAIN[@]}" --out "$WORK/cuda" --device "$GPU" $AMP --channels-last
run train_cpu 80 $ZOO "${TRAIN[@]}" --out "$WORK/cpu" --device cpu --no-amp --no-channels-last
say "1. zoo train $MODEL, $EPOCHS epochs on demo:cats: cuda+amp+channels-last val_acc $(acc train_cuda) in $(secs train_cuda) s;" \
    "cpu fp32 val_acc $(acc train_cpu) in $(secs train_cpu) s (same seed: close, not bit-equal)"

# -- 2. a 1-process torchrun on nccl against the plain CUDA run ------------------------
# zoo joins the process group with nccl on a CUDA device (gloo in a rehearsal).
run torchrun 80 $PY -m torch.distributed.run --standalone --nproc_per_node 1 -m zoo "${TRAIN[@]}" \
    --out "$WORK/ddp" --device "$GPU" $AMP --channels-last
say "2. torchrun --nproc_per_node 1 ($([ "$GPU" = cuda ] && echo nccl || echo gloo)): val_acc $(acc torchrun)" \
    "in $(secs torchrun) s; without torchrun $(acc train_cuda)"

# -- 3. the feature engine: cached features on CUDA against the CPU ---------------------
FT=(finetune cifar8_resnet --data demo:cats --epochs "$((EPOCHS * 2))" --seed 0 --no-plot -q --json)
run features_cuda 50 $ZOO "${FT[@]}" --out "$WORK/ft_cuda" --device "$GPU"
run features_cpu 50 $ZOO "${FT[@]}" --out "$WORK/ft_cpu" --device cpu
say "3. zoo finetune cifar8_resnet (cached features): cuda val_acc $(acc features_cuda) in $(secs features_cuda) s" \
    "(cached: $(field "$WORK/features_cuda.json" cached_features)); cpu val_acc $(acc features_cpu) in $(secs features_cpu) s"

# -- 4. zoo serve on the CUDA execution provider against the CPU provider --------------
serve_predict() {  # serve_predict PROVIDER PORT -> $WORK/serve_PORT.json: top label and probability per image
    local provider=$1 port=$2
    local onnx
    onnx=$(ls "$WORK"/onnx/*.onnx | grep -v '\.int8\.' | head -n 1)
    $ZOO serve "$onnx" --port "$port" --provider "$provider" >"$WORK/serve_$2.log" 2>&1 &
    local pid=$!
    timeout $((45 * ${DEVICE_CHECK_SLOW:-1})) $PY - "$port" "$WORK/serve_$2.json" "$(basename "$onnx" .onnx)" <<'EOF'
import json, sys, time, urllib.request
from pathlib import Path
from zoo.data.folder import resolve_data_path
port, out, name = sys.argv[1:4]
base = f"http://127.0.0.1:{port}"
for _ in range(600):
    try:
        if urllib.request.urlopen(base + "/readyz", timeout=2).status == 200:
            break
    except Exception:
        time.sleep(0.1)
images = sorted(Path(resolve_data_path("demo:cats")).rglob("*.jpg"))[:32]
rows, t0 = [], time.perf_counter()
for path in images:
    request = urllib.request.Request(f"{base}/v1/models/{name}/predict?top_k=1", data=path.read_bytes(), method="POST")
    top = json.load(urllib.request.urlopen(request, timeout=30))["top"][0]
    rows.append([top["label"], top["probability"]])
json.dump({"rows": rows, "ms_per_image": 1000 * (time.perf_counter() - t0) / max(1, len(rows))}, open(out, "w"))
EOF
    local rc=$?
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    [ "$rc" -eq 0 ] || say "  serve --provider $provider: $(tail -n 1 "$WORK/serve_$2.log")"
}
if run export 40 $ZOO export "$WORK/cpu/best" --out "$WORK/onnx" --format onnx; then
    serve_predict "$GPU" 8731
    serve_predict cpu 8732
    say "4. zoo serve: $($PY - "$WORK/serve_8731.json" "$WORK/serve_8732.json" <<'EOF'
import json, sys
try:
    gpu, cpu = (json.load(open(p)) for p in sys.argv[1:3])
except Exception as exc:
    print(f"no comparison ({exc})")
    sys.exit()
same = sum(a[0] == b[0] for a, b in zip(gpu["rows"], cpu["rows"]))
diff = max(abs(a[1] - b[1]) for a, b in zip(gpu["rows"], cpu["rows"]))
print(f"CUDA provider {gpu['ms_per_image']:.1f} ms/image, CPU provider {cpu['ms_per_image']:.1f} ms/image;"
      f" the same top label on {same}/{len(cpu['rows'])} images, probabilities within {diff:.2e}")
EOF
)"
else
    say "4. zoo serve: no comparison (the export failed)"
fi

if [ -n "${OUT:-}" ]; then
    mkdir -p "$OUT" && cp "$REPORT" "$OUT/device_check.txt"
fi
