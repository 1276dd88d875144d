#!/usr/bin/env bash
# `facenet bench embed`: the table and the JSON form in float32, the
# refusal of int8 for a model without calibration, and bad options.
# PyTorch is not run here (--no-torch): its side needs python3-torch and
# takes a minute. Skips (77) when the embedding model is absent.
set -u
cli=${FACENET_CLI:?FACENET_CLI is not set}
src=${FACENET_SOURCE_DIR:?}
models=${FACENET_MODELS_DIR:-$src/models}
model=$models/dlib_resnet29.safetensors
if [ ! -f "$model" ]; then
    echo "SKIP: $model is missing; run scripts/setup.sh"
    exit 77
fi
. "$(dirname "$0")/bench_lib.sh"

run=(bench embed --model "$model" --threads-list 1 --batches 1,2 --seconds 1 --rounds 1 --no-torch)
out=$("$cli" "${run[@]}" 2>&1)
check "FMA peak line" "$out" '^FMA peak \(.*measured\): 1 thread [0-9.]+ GFLOP/s'
check "a row per batch" "$out" '^ +f32 +1 +2 +[0-9]+\.[0-9]{3} +[0-9.]+ +[0-9.]+ +[0-9.]+%$'
check "best line" "$out" '^best: [0-9.]+ ms/face \(f32, 1 thread, batch [12]\)$'

out=$("$cli" "${run[@]}" --json 2>&1)
check "JSON" "$out" '^\{"bench": "embed", "backend": "[^"]+", "precision": "f32", "threads": 1, "batch": 2, "ms_per_face": [0-9.]+, "gflops": [0-9.]+, "fma_peak_gflops": [0-9.]+, "fraction_of_peak": [0-9.]+\}$'

out=$("$cli" "${run[@]}" --precision int8 2>&1)
check "int8 without calibration" "$out" 'carries no int8 calibration'
status "int8 without calibration" 1 "$cli" "${run[@]}" --precision int8
status "--batches 0" 2 "$cli" bench embed --batches 0
status "--precision fp16" 2 "$cli" bench embed --precision fp16
status "an unknown benchmark" 2 "$cli" bench everything

finish
