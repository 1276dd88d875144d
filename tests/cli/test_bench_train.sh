#!/usr/bin/env bash
# `facenet bench train`: the table and the JSON form on the small network
# (no model files needed), PyTorch's refusals (it builds the ResNet-29 only;
# an explicit Python without torch is not second-guessed), and bad options.
# When a Python with torch is installed, one short round of the ResNet-29
# against PyTorch checks that its figures are read and a ratio printed.
set -u
cli=${FACENET_CLI:?FACENET_CLI is not set}
. "$(dirname "$0")/bench_lib.sh"

small=(--arch small --batch 8 --seconds 0.2 --threads 2)
out=$("$cli" bench train "${small[@]}" --rounds 2 2>&1)
check "heading" "$out" '^training step: small, batch 8, 2 threads, backend '
check "PyTorch builds the ResNet-29 only" "$out" '^PyTorch: not run \(the PyTorch script builds the ResNet-29 only\)'
check "a row per round" "$out" '^ +2 +[0-9]+\.[0-9] +\( +[0-9.]+ +[0-9.]+ +[0-9.]+\) +- +- +-$'
check "summary" "$out" '^ours: [0-9.]+ ms per step, [0-9.]+ faces/s \(load average'

out=$("$cli" bench train "${small[@]}" --rounds 1 --json 2>&1)
check "JSON" "$out" '^\{"arch": "small", "batch": 8, "threads": 2, "backend": "[^"]+", "rounds": 1, "ms_per_step": [0-9.]+, "faces_per_s": [0-9.]+, .*"load": \[[0-9.]+, [0-9.]+\]\}$'

out=$("$cli" bench train --batch 4 --seconds 0.2 --rounds 1 --python /nonexistent/python3 2>&1)
check "an explicit Python without torch" "$out" '^PyTorch: not run \(no python3 that imports torch'

status "--batch 1" 2 "$cli" bench train --batch 1
status "--arch vgg" 2 "$cli" bench train --arch vgg
status "--seconds 0" 2 "$cli" bench train --seconds 0
status "--rounds 99" 2 "$cli" bench train --rounds 99
status "an unknown option" 2 "$cli" bench train --fast

py=""
for p in "${FACENET_PYTHON:-}" python3 /usr/bin/python3; do
    if [ -n "$p" ] && "$p" -c "import torch, numpy" > /dev/null 2>&1; then py=$p; break; fi
done
if [ -n "$py" ]; then
    out=$("$cli" bench train --batch 6 --seconds 0.3 --rounds 1 --python "$py" 2>&1)
    check "PyTorch's figures and the ratio" "$out" '^ +1 +[0-9.]+ +\(.*\) +[0-9.]+ +[0-9.]+ +[0-9.]+x$'
    check "the ratio in the summary" "$out" '^ours: .*; PyTorch [^:]+: [0-9.]+ ms per step, [0-9.]+ faces/s: [0-9.]+x'
else
    echo "skip: no python3 with torch and numpy; PyTorch's side not checked"
fi

finish
