#!/usr/bin/env bash
# The photo commands end to end on face-api's demo photos: detect, embed,
# compare, align, and their exit statuses (0 ok / same person, 1 different
# or unreadable, 2 error, 3 no face).
set -u
cli=${FACENET_CLI:?FACENET_CLI is not set}
models=${FACENET_MODELS_DIR:?}
demo=$models/face-api-1.7.15/demo
for f in ssd_mobilenetv1 face_landmark_68 dlib_resnet29; do
    if [ ! -f "$models/$f.safetensors" ]; then
        echo "SKIP: $models/$f.safetensors is missing (scripts/setup.sh)"
        exit 77
    fi
done
[ -f "$demo/sample1.jpg" ] || { echo "SKIP: demo photos missing (scripts/setup.sh)"; exit 77; }
export FACENET_MODEL_DIR=$models
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
check() { # check WANT_STATUS GOT_STATUS WHAT
    if [ "$1" != "$2" ]; then echo "FAIL: $3: status $2, want $1"; fails=$((fails + 1)); else echo "ok: $3"; fi
}

"$cli" detect "$demo/sample1.jpg" --draw "$tmp/drawn.png" >"$tmp/d.json"
check 0 $? "detect sample1"
n=$(grep -o '"score"' "$tmp/d.json" | wc -l)
[ "$n" = 3 ] && echo "ok: 3 faces in sample1" || { echo "FAIL: $n faces in sample1, want 3"; fails=$((fails + 1)); }
[ -s "$tmp/drawn.png" ] && echo "ok: --draw wrote a PNG" || { echo "FAIL: no drawing"; fails=$((fails + 1)); }
grep -q '"landmarks": \[\[' "$tmp/d.json" || { echo "FAIL: no landmarks"; fails=$((fails + 1)); }

"$cli" detect --detector tiny "$demo/sample3.jpg" >"$tmp/t.json"
check 0 $? "detect --detector tiny"

"$cli" embed "$demo/sample2.jpg" >"$tmp/e.jsonl"
check 0 $? "embed sample2"
[ "$(wc -l <"$tmp/e.jsonl")" = 3 ] || { echo "FAIL: embed gave $(wc -l <"$tmp/e.jsonl") lines"; fails=$((fails + 1)); }

"$cli" embed --jitters 4 "$demo/sample2.jpg" >"$tmp/ej.jsonl"
check 0 $? "embed --jitters 4 sample2"
[ "$(wc -l <"$tmp/ej.jsonl")" = 3 ] || { echo "FAIL: embed --jitters gave $(wc -l <"$tmp/ej.jsonl") lines"; fails=$((fails + 1)); }
cmp -s "$tmp/e.jsonl" "$tmp/ej.jsonl" && { echo "FAIL: --jitters 4 changed no embedding"; fails=$((fails + 1)); }
"$cli" embed --jitters 2 --align faceapi "$demo/sample2.jpg" >/dev/null 2>"$tmp/ej.err"
check 1 $? "embed --jitters with face-api's crop"
grep -q "similarity" "$tmp/ej.err" || { echo "FAIL: --jitters --align faceapi said: $(cat "$tmp/ej.err")"; fails=$((fails + 1)); }

"$cli" compare "$demo/sample1.jpg" "$demo/sample1.jpg" >"$tmp/c.txt"
check 0 $? "compare a photo with itself: same person"
grep -q "distance 0.0000" "$tmp/c.txt" || { echo "FAIL: self-distance not 0: $(cat "$tmp/c.txt")"; fails=$((fails + 1)); }
"$cli" compare --threshold 0.01 "$demo/sample1.jpg" "$demo/sample2.jpg" >/dev/null
check 1 $? "compare two different people"
"$cli" compare --json --all "$demo/sample1.jpg" "$demo/sample2.jpg" >"$tmp/all.json"
[ "$(wc -l <"$tmp/all.json")" = 9 ] || { echo "FAIL: --all gave $(wc -l <"$tmp/all.json") pairs, want 9"; fails=$((fails + 1)); }

# A photo without a face, and an unreadable one.
printf 'P6\n64 48\n255\n' >"$tmp/flat.ppm"
head -c $((64 * 48 * 3)) /dev/zero | tr '\0' '\200' >>"$tmp/flat.ppm"
"$cli" detect "$tmp/flat.ppm" >"$tmp/flat.json"
check 3 $? "detect on a photo without a face"
grep -q '"faces": \[\]' "$tmp/flat.json" || { echo "FAIL: faces not empty"; fails=$((fails + 1)); }
"$cli" compare "$tmp/flat.ppm" "$demo/sample1.jpg" 2>/dev/null
check 2 $? "compare with a faceless photo is an error"
printf 'garbage' >"$tmp/bad.jpg"
"$cli" detect "$tmp/bad.jpg" 2>/dev/null
check 1 $? "detect on a non-image"
"$cli" compare "$tmp/bad.jpg" "$demo/sample1.jpg" 2>/dev/null
check 2 $? "compare with a non-image"

"$cli" align --out "$tmp/chips" "$demo/sample4.jpg" >"$tmp/a.jsonl"
check 0 $? "align sample4"
[ "$(ls "$tmp/chips" | wc -l)" = 4 ] || { echo "FAIL: $(ls "$tmp/chips" | wc -l) chips, want 4"; fails=$((fails + 1)); }
# An aligned chip embedded as a chip gives the photo's embedding back.
"$cli" embed --chip "$tmp/chips/sample4_0.png" >"$tmp/chip.json"
check 0 $? "embed --chip an aligned chip"

# int8: the detector calibrated on two demo photos (`quantize --network
# detector`), then run with --int8 on another: it finds sample4's four
# faces. bench detect, which embeds too, refuses --int8 while the embedding
# model is uncalibrated, and with both calibrated says both ran in int8.
"$cli" quantize --network detector --threads 2 --out "$tmp/ssd8.safetensors" "$demo/sample1.jpg" \
    "$demo/sample2.jpg" 2>"$tmp/q.err"
check 0 $? "quantize --network detector"
grep -q "2 photos from 2 images" "$tmp/q.err" || { echo "FAIL: quantize said: $(cat "$tmp/q.err")"; fails=$((fails + 1)); }
"$cli" detect --int8 --detector-model "$tmp/ssd8.safetensors" "$demo/sample4.jpg" >"$tmp/d8.json"
check 0 $? "detect --int8 with the calibrated detector"
n=$(grep -o '"score"' "$tmp/d8.json" | wc -l)
[ "$n" = 4 ] && echo "ok: 4 faces in sample4 in int8" || { echo "FAIL: $n faces in sample4 in int8, want 4"; fails=$((fails + 1)); }
"$cli" bench detect --no-faceapi --runs 1 --int8 --detector-model "$tmp/ssd8.safetensors" "$demo/sample4.jpg" \
    >"$tmp/b8.txt" 2>&1
check 1 $? "bench detect --int8 with an uncalibrated embedding model is refused"
grep -q "no int8 calibration" "$tmp/b8.txt" || { echo "FAIL: bench said: $(cat "$tmp/b8.txt")"; fails=$((fails + 1)); }
"$cli" quantize --threads 2 --out "$tmp/emb8.safetensors" "$demo/sample1.jpg" 2>/dev/null
check 0 $? "quantize the embedding model"
"$cli" bench detect --no-faceapi --runs 1 --int8 --model "$tmp/emb8.safetensors" \
    --detector-model "$tmp/ssd8.safetensors" "$demo/sample4.jpg" >"$tmp/b8.txt" 2>&1
check 0 $? "bench detect --int8, detector and embedding calibrated"
grep -q "int8: detector embedding" "$tmp/b8.txt" || { echo "FAIL: bench said: $(cat "$tmp/b8.txt")"; fails=$((fails + 1)); }

echo "$fails failed"
[ "$fails" = 0 ]
