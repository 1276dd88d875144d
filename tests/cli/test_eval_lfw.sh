#!/usr/bin/env bash
# `facenet eval lfw` end to end on a subset of the real LFW pairs: --limit 10
# of View 2 is 200 pairs over 312 images. Checks that the figures are sane
# (accuracy > 90%), that a second run comes wholly from the cache with the
# same figures, that a torn record at the cache's end is dropped and only
# that image embedded again, a View 1 run, --no-flip, --jitters, the HTML report, and
# clean failures on bad input.
#
# The tiny detector keeps the run to a few minutes (the SSD detector takes
# seconds per photo on the reference backend). Under AddressSanitizer, ten
# times slower, the default is --limit 2 (40 pairs) so the suite stays
# within CTest's time limit. FACENET_EVAL_DETECTOR=ssd and
# FACENET_EVAL_LIMIT=N override. Skips (77) when the shared LFW folder
# ($FACENET_SHARED_DIR/data/lfw) or the models are absent.
set -u
cli=${FACENET_CLI:?FACENET_CLI is not set}
src=${FACENET_SOURCE_DIR:?}
shared=${FACENET_SHARED_DIR:-$src/../shared}
models=${FACENET_MODELS_DIR:-$src/models}
lfw=$shared/data/lfw
detector=${FACENET_EVAL_DETECTOR:-tiny}
sanitized=0
ldd "$cli" 2>/dev/null | grep -qE 'lib(asan|ubsan|tsan)' && sanitized=1
limit=${FACENET_EVAL_LIMIT:-$([ $sanitized = 1 ] && echo 2 || echo 10)}
small=$([ $sanitized = 1 ] && echo 1 || echo 3) # pairs per fold of the View 1 and --flip runs

if [ ! -f "$lfw/pairs.txt" ] || [ ! -d "$lfw/Zico" ]; then
    echo "SKIP: $lfw is absent (the LFW images and pairs.txt are only in the project's workspace)"
    exit 77
fi
det_model=tiny_face_detector
[ "$detector" = ssd ] && det_model=ssd_mobilenetv1
for m in dlib_resnet29 $det_model face_landmark_68; do
    if [ ! -f "$models/$m.safetensors" ]; then
        echo "SKIP: $models/$m.safetensors is missing; run scripts/setup.sh"
        exit 77
    fi
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() {
    echo "FAIL: $*"
    fails=$((fails + 1))
}
ok() { echo "ok: $*"; }

m=(--model "$models/dlib_resnet29.safetensors" --detector "$detector"
   --detector-model "$models/$det_model.safetensors" --landmark-model "$models/face_landmark_68.safetensors")
# ev ARGS: facenet eval lfw on the shared LFW with the test's models and cache.
ev() { "$cli" eval lfw --dir "$lfw" --cache "$tmp/cache" "${m[@]}" "$@"; }
# num KEY FILE: a top-level number of the JSON output (one member per line).
num() { sed -n "s/^  \"$1\": \([-0-9.e+]*\),\{0,1\}\$/\1/p" "$2"; }
# check EXPR KEY...: awk test on values, e.g. check 'v > 0.9' accuracy
check() {
    local expr=$1 file=$2 key=$3 v
    v=$(num "$key" "$file")
    if [ -n "$v" ] && awk -v v="$v" "BEGIN { exit !($expr) }"; then
        ok "$key = $v ($expr)"
    else
        fail "$key = '$v', want $expr"
    fi
}
# The figures that must not change between runs on the same embeddings.
figures() {
    local keys='accuracy|accuracy_std|val|val_std|far|auc|eer|eer_threshold|threshold|pairs|images|no_face'
    grep -E "^  \"($keys)\"" "$1"
}

# 1. A fresh run: embeds every image.
start=$(date +%s)
ev --limit "$limit" --json --report "$tmp/report" >"$tmp/run1.json" 2>"$tmp/run1.err"
status=$?
echo "first run: status $status, $(($(date +%s) - start)) s"
sed 's/^/    /' "$tmp/run1.err" | tail -n 4
if [ $status != 0 ]; then
    fail "eval lfw exited with $status"
    cat "$tmp/run1.json"
    exit 1
fi
grep -E '"(accuracy|val|far|auc|eer|threshold|images|no_face|wall_seconds)"' "$tmp/run1.json"
check "v == $((limit * 20))" "$tmp/run1.json" pairs
check "v == 10" "$tmp/run1.json" folds
check "v > 0.90" "$tmp/run1.json" accuracy
check "v >= 0 && v < 0.1" "$tmp/run1.json" accuracy_std
check "v > 0.95" "$tmp/run1.json" auc
check "v >= 0 && v < 0.1" "$tmp/run1.json" eer
check "v > 0.6" "$tmp/run1.json" val
check "v > 0.2 && v < 1.0" "$tmp/run1.json" threshold
images=$(num images "$tmp/run1.json")
check "v >= 0 && v < 0.25 * $images" "$tmp/run1.json" no_face
check "v == $images" "$tmp/run1.json" embedded
check "v == 0" "$tmp/run1.json" from_cache
grep -q '"std": "population"' "$tmp/run1.json" && ok "std is stated" || fail "no std kind"
html=$tmp/report/index.html
[ -f "$html" ] && grep -q '<svg' "$html" && grep -q 'thumbs/' "$html" && ok "report written" ||
    fail "no report"
n_thumbs=$(ls "$tmp/report/thumbs" 2>/dev/null | grep -c '\.png$')
[ "$n_thumbs" -gt 10 ] && ok "$n_thumbs thumbnails" || fail "only $n_thumbs thumbnails"

# 2. Again: everything from the cache, the same figures.
ev --limit "$limit" --json >"$tmp/run2.json" 2>"$tmp/run2.err"
[ $? = 0 ] || fail "second run failed: $(cat "$tmp/run2.err")"
check "v == 0" "$tmp/run2.json" embedded
check "v == $images" "$tmp/run2.json" from_cache
cmp -s <(figures "$tmp/run1.json") <(figures "$tmp/run2.json") && ok "same figures from the cache" ||
    fail "figures changed: $(diff <(figures "$tmp/run1.json") <(figures "$tmp/run2.json"))"

# 3. A run killed while writing: the last record is torn. It is dropped and
#    only that image is embedded again.
cache_file=$(ls "$tmp/cache"/*.fnec)
size=$(stat -c %s "$cache_file")
truncate -s $((size - 100)) "$cache_file"
ev --limit "$limit" --json >"$tmp/run3.json" 2>"$tmp/run3.err"
[ $? = 0 ] || fail "run after truncation failed: $(cat "$tmp/run3.err")"
grep -q "dropped" "$tmp/run3.err" && ok "torn tail reported" || fail "torn tail not reported"
check "v == 1" "$tmp/run3.json" embedded
cmp -s <(figures "$tmp/run1.json") <(figures "$tmp/run3.json") && ok "same figures after the repair" ||
    fail "figures changed after the repair"
new_size=$(stat -c %s "$cache_file")
[ "$new_size" = "$size" ] && ok "cache whole again" || fail "cache size $new_size != $size"

# 4. The text summary.
ev --limit "$limit" >"$tmp/run4.txt" 2>/dev/null
grep -qE '^accuracy +[0-9.]+% \+- [0-9.]+%' "$tmp/run4.txt" && grep -q '^VAL@FAR=1e-3' "$tmp/run4.txt" &&
    grep -q '^no face ' "$tmp/run4.txt" && grep -q '^wall time' "$tmp/run4.txt" && ok "text summary" ||
    { fail "text summary"; cat "$tmp/run4.txt"; }

# 5. View 1 (threshold on pairsDevTrain, tested on pairsDevTest), with and
#    without the mirror image, on a few pairs.
v1=(--pairs "$lfw/pairsDevTest.txt" --train-pairs "$lfw/pairsDevTrain.txt" --limit "$small" --json)
ev "${v1[@]}" >"$tmp/v1.json" 2>"$tmp/v1.err"
[ $? = 0 ] || fail "View 1 run failed: $(cat "$tmp/v1.err")"
check "v == 1" "$tmp/v1.json" view
check "v == $((small * 2))" "$tmp/v1.json" pairs
check "v >= 0.5" "$tmp/v1.json" accuracy
grep -q '"flip": true' "$tmp/v1.json" && ok "the mirror image is used by default" || fail "flip is not the default"
ev "${v1[@]}" --no-flip >"$tmp/flip.json" 2>"$tmp/flip.err"
[ $? = 0 ] || fail "--no-flip run failed: $(cat "$tmp/flip.err")"
# The cache holds the chip's and the mirror's vectors: nothing embedded again.
check "v == 0" "$tmp/flip.json" embedded
grep -q '"flip": false' "$tmp/flip.json" && ok "--no-flip" || fail "--no-flip still flips"
check "v >= 0.5" "$tmp/flip.json" accuracy
# With jitters (10: more than the 8 chips eval embeds per call): a cache of
# its own (every image embedded again), the count in the report, and a second
# run from the cache.
ev "${v1[@]}" --jitters 10 --report "$tmp/jreport" >"$tmp/jit.json" 2>"$tmp/jit.err"
[ $? = 0 ] || fail "--jitters run failed: $(cat "$tmp/jit.err")"
check "v == 10" "$tmp/jit.json" jitters
grep -q '+ 10 jitters' "$tmp/jreport/index.html" && ok "the report gives the jitter count" ||
    fail "the report lacks the jitter count"
check "v > 0" "$tmp/jit.json" embedded
check "v >= 0.5" "$tmp/jit.json" accuracy
ev "${v1[@]}" --jitters 10 >"$tmp/jit2.json" 2>"$tmp/jit2.err"
check "v == 0" "$tmp/jit2.json" embedded

# 6. Bad input fails with a message, never a crash.
expect() {
    local want=$1 pattern=$2
    shift 2
    "$@" >"$tmp/out" 2>"$tmp/err"
    local got=$?
    if [ "$got" = "$want" ] && grep -qiE "$pattern" "$tmp/err"; then
        ok "$want: $(head -n1 "$tmp/err")"
    else
        fail "$* -> status $got (want $want): $(head -c 300 "$tmp/err")"
    fi
}
printf '1 1\nA 1 2\nA 1 B 1 C\n' >"$tmp/bad_pairs.txt"
expect 1 "bad_pairs.txt line 3: expected 3 or 4 fields, found 5" ev --pairs "$tmp/bad_pairs.txt"
printf '1 1\nNobody_Here 1 2\nNobody_Here 1 Nor_Here 1\n' >"$tmp/absent.txt"
expect 1 "Nobody_Here_000[12].jpg|Nor_Here_0001.jpg" ev --pairs "$tmp/absent.txt"
expect 2 "no folds|View 1" ev --pairs "$lfw/pairsDevTest.txt"
expect 1 "cannot open" "$cli" eval lfw --dir "$tmp/nowhere" --cache "$tmp/cache" "${m[@]}"
expect 2 "required" "$cli" eval lfw
expect 2 "name the benchmark" "$cli" eval
expect 2 "unknown option" "$cli" eval lfw --dir "$lfw" --bogus
expect 2 "whole number" "$cli" eval lfw --dir "$lfw" --limit none

echo "$fails failed"
[ "$fails" = 0 ]
