#!/usr/bin/env bash
# demo.sh - install everything (scripts/setup.sh), then run facenet on real
# photos: face-api's six demo photos. Face chips are cut at the face
# rectangles recorded in tests/golden/faceapi_demo.json (until detection
# lands, the photos' faces are located from there), embedded, and their
# pairwise distances printed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
out=build/demo
mkdir -p "$out"
python3 scripts/demo_chips.py models/face-api-1.7.15/demo tests/golden/faceapi_demo.json "$out"
build/facenet embed --chip "$out"/*.ppm > "$out/embeddings.jsonl"
python3 scripts/demo_chips.py --distances "$out/embeddings.jsonl"
