#!/usr/bin/env bash
# The facenet command on bad input: every case must fail with a message on
# stderr and exit status 1 (bad data) or 2 (bad usage), never crash.
set -u
cli=${FACENET_CLI:?FACENET_CLI is not set}
src=${FACENET_SOURCE_DIR:?}
models=${FACENET_MODELS_DIR:-$src/models}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0

# expect STATUS PATTERN CMD...: run, check the exit status and that stderr matches.
expect() {
    local want=$1 pattern=$2
    shift 2
    "$@" >"$tmp/out" 2>"$tmp/err"
    local got=$?
    if [ "$got" != "$want" ] || ! grep -qiE "$pattern" "$tmp/err"; then
        echo "FAIL: $* -> status $got (want $want), stderr:"
        sed 's/^/    /' "$tmp/err"
        fails=$((fails + 1))
    else
        echo "ok: $* -> $got: $(head -c 160 "$tmp/err" | head -n1)"
    fi
}

# Usage errors.
expect 2 "unknown command" "$cli" frobnicate
expect 2 "usage" "$cli"
expect 2 "no command" "$cli" help frobnicate
expect 2 "unknown option" "$cli" embed --chip --bogus x.png
expect 2 "no images" "$cli" embed --chip
expect 2 "whole number" "$cli" embed --chip --threads lots x.png
expect 2 "jitters" "$cli" embed --jitters 0 x.png
expect 2 "jitters" "$cli" embed --jitters 101 x.png
expect 2 "need MANIFEST" "$cli" convert only-one-arg

# Bad images (given a model; otherwise the model error comes first).
printf 'hello, I am not an image' >"$tmp/text.png"
: >"$tmp/empty.jpg"
head -c 300 "$src/tests/data/image/color.jpg" >"$tmp/truncated.jpg"
printf 'P6\n100000 100000\n255\n' >"$tmp/huge.ppm"
printf 'P6\n0 10\n255\n' >"$tmp/zero.ppm"
if [ -f "$models/dlib_resnet29.safetensors" ]; then
    m=(--model "$models/dlib_resnet29.safetensors")
    expect 1 "not a JPEG, PNG or PPM" "$cli" embed --chip "${m[@]}" "$tmp/text.png"
    expect 1 "empty" "$cli" embed --chip "${m[@]}" "$tmp/empty.jpg"
    expect 1 "truncated" "$cli" embed --chip "${m[@]}" "$tmp/truncated.jpg"
    expect 1 "limit" "$cli" embed --chip "${m[@]}" "$tmp/huge.ppm"
    expect 1 "zero|width|height" "$cli" embed --chip "${m[@]}" "$tmp/zero.ppm"
    expect 1 "cannot open" "$cli" embed --chip "${m[@]}" "$tmp/does-not-exist.png"
    # A good chip next to a bad one: the good one is still embedded.
    "$cli" embed --chip "${m[@]}" "$src/tests/data/image/color.ppm" "$tmp/text.png" >"$tmp/out" 2>/dev/null
    if [ $? != 1 ] || ! grep -q '"embedding"' "$tmp/out"; then
        echo "FAIL: a good chip beside a bad one was not embedded"; fails=$((fails + 1))
    fi
else
    echo "SKIP: image cases need models/dlib_resnet29.safetensors (scripts/setup.sh)"
fi

# Bad model files.
expect 1 "cannot be read|No such file" "$cli" embed --chip --model "$tmp/none.safetensors" x.png
printf '\x10\x00\x00\x00\x00\x00\x00\x00{"a":' >"$tmp/trunc.safetensors"
expect 1 "safetensors|header|JSON" "$cli" embed --chip --model "$tmp/trunc.safetensors" "$src/tests/data/image/color.ppm"
printf '\xff\xff\xff\xff\xff\xff\xff\x7f' >"$tmp/liar.safetensors"
expect 1 "header" "$cli" embed --chip --model "$tmp/liar.safetensors" "$src/tests/data/image/color.ppm"
printf '\x02\x00\x00\x00\x00\x00\x00\x00{}' >"$tmp/empty.safetensors"
expect 1 "architecture" "$cli" embed --chip --model "$tmp/empty.safetensors" "$src/tests/data/image/color.ppm"
if [ -f "$models/dlib_resnet29.safetensors" ]; then
    # A real model cut short: the tensors run past the end.
    head -c 100000 "$models/dlib_resnet29.safetensors" >"$tmp/cut.safetensors"
    expect 1 "past|end|size|offset" "$cli" embed --chip --model "$tmp/cut.safetensors" "$src/tests/data/image/color.ppm"
fi
# int8: a model without calibration, calibration without chips, and a
# calibration tensor that is not a range.
expect 2 "is required" "$cli" quantize --chip x.png
expect 2 "percentile" "$cli" quantize --out "$tmp/q.safetensors" --percentile 20 x.png
expect 2 "takes embedding or detector" "$cli" quantize --network landmarks --out "$tmp/q.safetensors" x.png
expect 2 "not on chips" "$cli" quantize --network detector --chip --out "$tmp/q.safetensors" x.png
expect 2 "detector ssd" "$cli" quantize --network detector --detector tiny --out "$tmp/q.safetensors" x.png
if [ -f "$models/tiny_face_detector.safetensors" ]; then
    expect 1 "only the dlib_resnet29 embedding network and the ssd_mobilenetv1 detector" "$cli" quantize \
        --network detector --detector-model "$models/tiny_face_detector.safetensors" --out "$tmp/q.safetensors" \
        "$src/tests/data/image/color.ppm"
fi
if [ -f "$models/dlib_resnet29.safetensors" ]; then
    m=(--model "$models/dlib_resnet29.safetensors")
    expect 1 "no int8 calibration.*facenet quantize" "$cli" embed --chip --int8 "${m[@]}" "$src/tests/data/image/color.ppm"
    expect 1 "no such file or folder" "$cli" quantize --chip "${m[@]}" --out "$tmp/q.safetensors" "$tmp/no-such-folder-or-image"
    expect 1 "names no int8 value" "$cli" quantize --chip "${m[@]}" --float32 bogus --out "$tmp/q.safetensors" \
        "$src/tests/data/image/color.ppm"
    # A calibrated copy whose range for the input is NaN: the file is
    # refused with the tensor's name, in float32 as in int8.
    if "$cli" quantize --chip "${m[@]}" --out "$tmp/q.safetensors" "$src/tests/data/image/color.ppm" 2>/dev/null &&
        python3 - "$tmp/q.safetensors" "$tmp/nan.safetensors" <<'PY'
import json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
off = 8 + n + h["int8/input"]["data_offsets"][0]
open(sys.argv[2], "wb").write(b[:off] + struct.pack("<f", float("nan")) + b[off + 4:])
PY
    then
        expect 1 "int8/input" "$cli" embed --chip --int8 --model "$tmp/nan.safetensors" "$src/tests/data/image/color.ppm"
        expect 1 "int8/input" "$cli" embed --chip --model "$tmp/nan.safetensors" "$src/tests/data/image/color.ppm"
    else
        echo "SKIP: the NaN calibration case needs python3"
    fi
fi
# The wrong kind of model for the job.
if [ -f "$models/tiny_face_detector.safetensors" ]; then
    expect 1 "not an embedding|not one this library runs" "$cli" embed --chip \
        --model "$models/tiny_face_detector.safetensors" "$src/tests/data/image/color.ppm"
fi

# Bad manifests.
printf '[{"paths": ["w.bin"], "weights": [{"name": "a", "shape": [4], "dtype": "float32"}]}]' >"$tmp/m.json"
printf 'abcd' >"$tmp/w.bin"
expect 1 "past|short|bytes" "$cli" convert "$tmp/m.json" "$tmp/out.safetensors"
[ -e "$tmp/out.safetensors" ] && { echo "FAIL: a failed conversion left an output file"; fails=$((fails + 1)); }
expect 1 "JSON|manifest" "$cli" convert "$tmp/text.png" "$tmp/out.safetensors"
expect 1 "cannot|No such" "$cli" convert "$tmp/missing.json" "$tmp/out.safetensors"

echo "$fails failed"
[ "$fails" = 0 ]
