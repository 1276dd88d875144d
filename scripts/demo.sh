#!/usr/bin/env bash
# demo.sh - install everything (scripts/setup.sh), then run facenet on real
# photos, face-api's six demo photos: find the faces (drawn into
# build/demo/*.png), embed every face, print the distance matrix, and compare
# two photos.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
out=build/demo
photos=(models/face-api-1.7.15/demo/sample*.jpg)
mkdir -p "$out"
echo "== facenet detect --draw $out ${photos[*]}"
build/facenet detect --draw "$out" "${photos[@]}" > "$out/detections.jsonl"
python3 - "$out/detections.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    print("%-45s %d faces, scores %s" % (r["file"], len(r["faces"]),
          " ".join("%.2f" % f["score"] for f in r["faces"])))
PY
echo "(drawings in $out/)"
echo
echo "== facenet embed ${photos[*]}"
build/facenet embed "${photos[@]}" > "$out/embeddings.jsonl"
threshold=$(build/facenet compare --json "${photos[0]}" "${photos[0]}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["threshold"])')
python3 scripts/distance_matrix.py "$out/embeddings.jsonl" "$threshold"
echo
echo "== facenet compare ${photos[0]} ${photos[3]}"
build/facenet compare "${photos[0]}" "${photos[3]}" || true
