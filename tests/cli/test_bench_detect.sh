#!/usr/bin/env bash
# `facenet bench detect` on one demo photo: the stage table, the JSON form,
# and the face-api side's refusals (a named photo; no Node.js; no script),
# which must say why and still time ours. face-api itself is not run here
# (a minute per photo); `facenet bench detect` with no photo does that.
# Skips (77) when the models or the demo photos are absent.
set -u
cli=${FACENET_CLI:?FACENET_CLI is not set}
src=${FACENET_SOURCE_DIR:?}
models=${FACENET_MODELS_DIR:-$src/models}
photo=$models/face-api-1.7.15/demo/sample4.jpg
for f in "$photo" "$models/ssd_mobilenetv1.safetensors" "$models/face_landmark_68.safetensors" \
    "$models/dlib_resnet29.safetensors"; do
    if [ ! -f "$f" ]; then
        echo "SKIP: $f is missing; run scripts/setup.sh"
        exit 77
    fi
done
export FACENET_MODEL_DIR=$models
. "$(dirname "$0")/bench_lib.sh"

out=$("$cli" bench detect --runs 1 "$photo" 2>&1)
check "stage table" "$out" '^sample4 +4( +[0-9]+\.[0-9]){6}$'
check "a named photo is not benched by face-api" "$out" '^face-api: not timed \(it is benched on the demo photos only'
check "mean line" "$out" '^mean [0-9.]+ ms per photo, [0-9.]+ without decoding$'

out=$("$cli" bench detect --runs 1 --json --no-faceapi "$photo" 2>&1)
check "JSON line" "$out" '^\{"bench": "detect", "photo": "sample4", "faces": 4, "decode_ms": [0-9.]+, .*"total_ms": [0-9.]+, "precision": "float32"\}$'
if printf '%s\n' "$out" | grep -q 'face-api'; then
    echo "FAIL: --no-faceapi still mentions face-api"
    fails=$((fails + 1))
fi

# The demo photos with face-api unavailable: ours is timed, the reason given.
out=$("$cli" bench detect --runs 1 --node /nonexistent/node 2>&1)
check "no Node.js" "$out" '^face-api: not timed \(no Node.js'
check "ours without Node.js" "$out" '^sample6 +[0-9]+( +[0-9]+\.[0-9]){6}$'
out=$("$cli" bench detect --runs 1 --faceapi-script /nonexistent/bench.mjs 2>&1)
if command -v node > /dev/null; then
    check "no script" "$out" '^face-api: not timed \(tools/parity/bench.mjs not found'
fi

out=$("$cli" bench detect --runs 0 "$photo" 2>&1)
check "bad --runs" "$out" 'runs'
status "bad --runs" 2 "$cli" bench detect --runs 0 "$photo"

finish
