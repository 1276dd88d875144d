#!/usr/bin/env bash
# `facenet train` end to end on a synthetic dataset made at test time (no
# photos needed): the small network trained from scratch for a few seconds
# on 30 identities, validated on 10 held-out ones. Checks that the loss
# falls and held-out verification rises, that the exported model works with
# embed and carries its threshold, that photos are aligned once (a cache)
# with a faceless one counted, that a run killed with kill -9 and resumed ends with
# exactly the model of an uninterrupted run (same seed, one thread), that
# the log holds every step once, and clean failures on bad input.
#
# Under AddressSanitizer (ten times slower) the runs are shorter.
set -u
cli=${FACENET_CLI:?FACENET_CLI is not set}
synth=${FACENET_SYNTH_FACES:?FACENET_SYNTH_FACES is not set}
sanitized=0
ldd "$cli" 2>/dev/null | grep -qE 'lib(asan|ubsan|tsan)' && sanitized=1
steps=$([ $sanitized = 1 ] && echo 32 || echo 40)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() {
    echo "FAIL: $*"
    fails=$((fails + 1))
}
ok() { echo "ok: $*"; }

"$synth" "$tmp/data" 40 8 32 3 || { echo "FAIL: cannot make the synthetic dataset"; exit 1; }
common=(--data "$tmp/data" --chips --include 'id1..id30' --val-include 'id31..id40' --input-size 32
        --P 6 --K 4 --select hardest --threads 1 --seed 5)
# col N FILE: column N of the log's rows, one per line.
col() { awk -F, -v c="$1" 'NR > 1 && $c != "" { print $c }' "$2"; }

# 1. Train, validating at the start and at the end.
start=$(date +%s)
"$cli" train "${common[@]}" --steps "$steps" --val-every "$steps" --checkpoint-every 4 \
    --out "$tmp/a.safetensors" >"$tmp/a.out" 2>"$tmp/a.err"
status=$?
echo "training: status $status, $(($(date +%s) - start)) s"
tr '\r' '\n' <"$tmp/a.err" | grep -v '^$' | tail -n 3 | sed 's/^/    /'
sed 's/^/    /' "$tmp/a.out"
if [ $status != 0 ]; then
    fail "facenet train exited with $status"
    exit 1
fi
# The loss (hardest negatives: one triplet per anchor-positive pair) over
# the first and the last quarter of the steps.
q=$((steps / 4))
first=$(col 2 "$tmp/a.safetensors.csv" | sed -n "2,$((q + 1))p" | awk '{ s += $1 } END { print s / NR }')
last=$(col 2 "$tmp/a.safetensors.csv" | tail -n "$q" | awk '{ s += $1 } END { print s / NR }')
awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a) }' && ok "loss falls: $first -> $last" ||
    fail "loss does not fall: $first -> $last"
acc0=$(col 10 "$tmp/a.safetensors.csv" | head -n 1)
acc1=$(col 10 "$tmp/a.safetensors.csv" | tail -n 1)
awk -v a="$acc0" -v b="$acc1" 'BEGIN { exit !(b > a + 0.05 && b > 0.8) }' &&
    ok "held-out verification rises: $acc0 -> $acc1" || fail "held-out verification: $acc0 -> $acc1"
[ "$(col 1 "$tmp/a.safetensors.csv" | sed 1d | tr '\n' ' ')" = "$(seq 1 "$steps" | tr '\n' ' ')" ] &&
    ok "the log has steps 1..$steps" || fail "the log's steps are not 1..$steps"
grep -q '<svg' "$tmp/a.safetensors.svg" && grep -q 'polyline' "$tmp/a.safetensors.svg" && ok "the plot" ||
    fail "no SVG plot"

# 2. The model is a model like any other, with its threshold.
"$cli" embed --chip --model "$tmp/a.safetensors" "$tmp/data/id31/1.ppm" >"$tmp/e.json"
[ $? = 0 ] && grep -q '"embedding": \[' "$tmp/e.json" && ok "embed --chip with the trained model" ||
    fail "embed --chip with the trained model"
head -c 4096 "$tmp/a.safetensors" | grep -aq '"threshold": *"0\.[0-9]*"' &&
    ok "the validation threshold is recorded in the model" || fail "no threshold in the model's metadata"

# 3. kill -9 in the middle, --resume, finish: the same model as run 1.
"$cli" train "${common[@]}" --steps "$steps" --val-every "$steps" --checkpoint-every 4 \
    --out "$tmp/b.safetensors" >/dev/null 2>"$tmp/b.err" &
pid=$!
kill_at=$((steps / 2))
for _ in $(seq 1 600); do
    n=$(col 1 "$tmp/b.safetensors.csv" 2>/dev/null | tail -n 1)
    [ -n "$n" ] && [ "$n" -ge "$kill_at" ] && break
    sleep 0.1
done
sleep 0.3 # between two checkpoints, most likely
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
killed_at=$(col 1 "$tmp/b.safetensors.csv" | tail -n 1)
[ -f "$tmp/b.safetensors" ] && fail "a model was exported before the end"
ls "$tmp"/b.safetensors.ckpt.* >/dev/null 2>&1 && echo "    (a temporary checkpoint file was left by the kill)"
"$cli" train "${common[@]}" --steps "$steps" --val-every "$steps" --checkpoint-every 4 --resume \
    --out "$tmp/b.safetensors" >"$tmp/b2.out" 2>"$tmp/b2.err"
status=$?
resumed=$(grep -o 'resumed from .* at step [0-9]*' "$tmp/b2.err" | grep -o '[0-9]*$')
[ $status = 0 ] && ok "killed at step $killed_at, resumed at step $resumed, finished" ||
    fail "resume exited with $status: $(tail -n 2 "$tmp/b2.err")"
# A step's log row is flushed before its checkpoint is written, so the log
# shows the last checkpoint or steps after it; a kill while a checkpoint is
# being written (a temporary file left behind) leaves the log up to one
# interval ahead of the checkpoint on disk. So the run resumes at a
# checkpoint at most one interval (4 steps) before the log's last row: the
# kill loses at most that interval, and the log is cut back to it (the
# steps-once check below).
[ -n "$resumed" ] && [ "$resumed" -gt 0 ] && [ $((resumed % 4)) = 0 ] && [ "$resumed" -ge $((killed_at - 4)) ] &&
    [ "$resumed" -lt "$steps" ] && ok "resumed at the last checkpoint" || fail "resumed at '$resumed' after $killed_at"
cmp -s "$tmp/a.safetensors" "$tmp/b.safetensors" && ok "the resumed run's model is the uninterrupted run's" ||
    fail "the resumed run's model differs from the uninterrupted run's"
[ "$(col 1 "$tmp/b.safetensors.csv" | sed 1d | tr '\n' ' ')" = "$(seq 1 "$steps" | tr '\n' ' ')" ] &&
    ok "the resumed log has steps 1..$steps once each" || fail "the resumed log's steps are not 1..$steps"

# 4. Resuming a checkpoint of another network fails cleanly.
"$cli" train "${common[@]}" --input-size 40 --steps 2 --resume --checkpoint "$tmp/a.safetensors.ckpt" \
    --out "$tmp/c.safetensors" >/dev/null 2>"$tmp/c.err"
[ $? = 1 ] && grep -q 'checkpoint of small at 32 px' "$tmp/c.err" && ok "a mismatched checkpoint: $(cat "$tmp/c.err")" ||
    fail "mismatched checkpoint: $(cat "$tmp/c.err")"

# 5. The options beside the defaults: the soft margin, the pair term,
# erasing and the weights' moving average, which the checkpoint carries and
# a resumed run takes back; then bad input.
"$cli" train "${common[@]}" --select all --loss soft --pair-margin 0.2 --erase 0.5 --ema 0.9 --steps 4 \
    --checkpoint-every 2 --out "$tmp/d.safetensors" >/dev/null 2>"$tmp/d.err"
[ $? = 0 ] && grep -aq 'fc/ema' "$tmp/d.safetensors.ckpt" && ok "soft margin, pair term, erasing, moving average" ||
    fail "soft, pair term, erase, ema: $(tail -n 2 "$tmp/d.err")"
"$cli" train "${common[@]}" --select all --loss soft --pair-margin 0.2 --erase 0.5 --ema 0.9 --steps 6 \
    --resume --checkpoint-every 2 --out "$tmp/d.safetensors" >/dev/null 2>"$tmp/d.err"
[ $? = 0 ] && ok "resumed with the moving average" || fail "resume with --ema: $(tail -n 2 "$tmp/d.err")"
"$cli" train "${common[@]}" --steps 6 --resume --out "$tmp/d.safetensors" >/dev/null 2>"$tmp/d.err"
[ $? = 1 ] && ok "a checkpoint with a moving average refused by a run without: $(tail -n 1 "$tmp/d.err")" ||
    fail "resume without --ema: $(tail -n 2 "$tmp/d.err")"
for bad in "--loss square" "--erase 1.5" "--pair-margin -1" "--ema 1" "--crop 0.95"; do
    # shellcheck disable=SC2086
    "$cli" train --data "$tmp/data" --chips --out "$tmp/x" $bad >/dev/null 2>"$tmp/x.err"
    [ $? = 2 ] && ok "$bad: $(cat "$tmp/x.err")" || fail "$bad: $(cat "$tmp/x.err")"
done
"$cli" train --data "$tmp/data" --chips --out "$tmp/x" --include 's9..s3' >/dev/null 2>"$tmp/x.err"
[ $? = 2 ] && grep -q "not a name pattern" "$tmp/x.err" && ok "a bad pattern: usage error" || fail "bad pattern: $(cat "$tmp/x.err")"
printf '2\nid1\t8\nnobody\t3\n' >"$tmp/people.txt"
"$cli" train --data "$tmp/data" --chips --out "$tmp/x" --people "$tmp/people.txt" >/dev/null 2>"$tmp/x.err"
[ $? = 1 ] && grep -q "people list line 3: no folder" "$tmp/x.err" && ok "a people list naming a missing folder" ||
    fail "people list: $(cat "$tmp/x.err")"
printf '2\nid1\t8\n' >"$tmp/people.txt"
"$cli" train --data "$tmp/data" --chips --out "$tmp/x" --people "$tmp/people.txt" >/dev/null 2>"$tmp/x.err"
[ $? = 1 ] && grep -q "people.txt line 3: ends after 1 of the people" "$tmp/x.err" && ok "a short people list" ||
    fail "short people list: $(cat "$tmp/x.err")"
"$cli" train --data "$tmp/data" --chips --out "$tmp/x" --include 'id1..id5' --val-include 'id4..id8' \
    >/dev/null 2>"$tmp/x.err"
[ $? = 2 ] && grep -q "both trained on and held out" "$tmp/x.err" && ok "overlapping held-out identities refused" ||
    fail "overlap: $(cat "$tmp/x.err")"
"$cli" train --out "$tmp/x" >/dev/null 2>&1
[ $? = 2 ] && ok "no --data: usage error" || fail "no --data"

# 6. Photos: aligned once through the cache (a folder made with its missing
# parents), a photo without a face counted (face-api's demo photos, with the
# tiny detector; skipped without them).
models=${FACENET_MODELS_DIR:-}
demo=$models/face-api-1.7.15/demo
if [ -n "$models" ] && [ -f "$demo/sample1.jpg" ] && [ -f "$models/tiny_face_detector.safetensors" ] &&
    [ -f "$models/face_landmark_68.safetensors" ]; then
    mkdir -p "$tmp/photos/a" "$tmp/photos/b"
    cp "$demo/sample1.jpg" "$demo/sample2.jpg" "$tmp/photos/a/"
    cp "$demo/sample3.jpg" "$demo/sample4.jpg" "$tmp/photos/b/"
    cp "$tmp/data/id1/1.ppm" "$tmp/photos/b/noface.ppm" # 32 px: too small for a face
    p=(--data "$tmp/photos" --detector tiny --detector-model "$models/tiny_face_detector.safetensors"
       --landmark-model "$models/face_landmark_68.safetensors" --cache "$tmp/new/chips" --P 2 --K 2
       --input-size 32 --steps 1 --threads 1 --out "$tmp/p.safetensors")
    "$cli" train "${p[@]}" >/dev/null 2>"$tmp/p1.err"
    s1=$?
    "$cli" train "${p[@]}" >/dev/null 2>"$tmp/p2.err"
    s2=$?
    l1=$(tr '\r' '\n' <"$tmp/p1.err" | grep 'photos:')
    l2=$(tr '\r' '\n' <"$tmp/p2.err" | grep 'photos:')
    [ $s1 = 0 ] && echo "$l1" | grep -q '5 aligned now, 0 from the cache, 1 without a face' &&
        ok "photos aligned, the faceless one counted" || fail "photos, first run ($s1): $l1 $(tail -n 1 "$tmp/p1.err")"
    [ $s2 = 0 ] && echo "$l2" | grep -q '0 aligned now, 5 from the cache, 1 without a face' &&
        ok "the second run reads the cache" || fail "photos, second run ($s2): $l2"
else
    echo "skip: photos (models or demo photos missing; scripts/setup.sh)"
fi

[ $fails = 0 ] && echo "all passed" || echo "$fails failed"
[ $fails = 0 ]
