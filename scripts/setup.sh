#!/usr/bin/env bash
# setup.sh - install what facenet needs on Debian 12 (run as root), fetch the
# pretrained models from npm (pinned version, integrity checked), build, and
# convert the models. Idempotent: a second run only checks and rebuilds.
#
#   bash scripts/setup.sh            # release build in build/
#   FACENET_SKIP_APT=1 bash ...      # do not touch system packages
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

# --- 1. system packages --------------------------------------------------------
pkgs=(build-essential cmake pkg-config libjpeg62-turbo-dev libpng-dev libcmocka-dev
      libjpeg-turbo-progs python3 ca-certificates libdnnl-dev)
if [ "${FACENET_SKIP_APT:-0}" != 1 ]; then
    missing=()
    for p in "${pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    # npm: Debian's package, unless a node/npm is already installed some other way.
    command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
    if [ ${#missing[@]} -gt 0 ]; then
        echo "setup: installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
fi

# --- 2. pretrained weights and sample photos from npm --------------------------
# shellcheck source=scripts/models.lock
. scripts/models.lock
dest="models/face-api-$FACEAPI_VERSION"
if [ ! -f "$dest/.complete" ]; then
    echo "setup: fetching @vladmandic/face-api@$FACEAPI_VERSION from npm"
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    (cd "$tmp" && npm pack --silent "@vladmandic/face-api@$FACEAPI_VERSION" >/dev/null)
    tgz=$(ls "$tmp"/*.tgz)
    got=$(openssl dgst -sha512 -binary "$tgz" 2>/dev/null | base64 -w0 || true)
    [ -n "$got" ] || got=$(python3 -c 'import base64,hashlib,sys; print(base64.b64encode(hashlib.sha512(open(sys.argv[1],"rb").read()).digest()).decode())' "$tgz")
    if [ "sha512-$got" != "$FACEAPI_INTEGRITY" ]; then
        echo "setup: integrity check FAILED for $tgz" >&2
        echo "  expected $FACEAPI_INTEGRITY" >&2
        echo "  got      sha512-$got" >&2
        exit 1
    fi
    mkdir -p "$tmp/x" "$dest"
    tar -xzf "$tgz" -C "$tmp/x" package/model package/demo package/LICENSE
    rm -rf "$dest/model" "$dest/demo"
    mv "$tmp/x/package/model" "$dest/model"
    mkdir -p "$dest/demo"
    mv "$tmp/x/package/demo/"*.jpg "$dest/demo/"
    mv "$tmp/x/package/LICENSE" "$dest/LICENSE"
    touch "$dest/.complete"
fi

# --- 3. build ------------------------------------------------------------------
build=${FACENET_BUILD_DIR:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null

# --- 4. convert the weights to facenet model files -----------------------------
for pair in face_recognition_model:dlib_resnet29 ssd_mobilenetv1_model:ssd_mobilenetv1 \
            face_landmark_68_model:face_landmark_68 face_landmark_68_tiny_model:face_landmark_68_tiny \
            tiny_face_detector_model:tiny_face_detector; do
    src="$dest/model/${pair%%:*}-weights_manifest.json"
    out="models/${pair##*:}.safetensors"
    # The embedding model carries its decision threshold, derived on LFW
    # (docs/evaluation.md) and pinned in models.lock.
    extra=()
    [ "${pair##*:}" = dlib_resnet29 ] && extra=(--threshold "$RESNET29_THRESHOLD")
    if [ ! -f "$out" ] || [ "$src" -nt "$out" ] || [ "$build/facenet" -nt "$out" ] ||
       [ scripts/models.lock -nt "$out" ]; then
        "$build/facenet" convert --model-id "face-api-$FACEAPI_VERSION/${pair%%:*}" "${extra[@]}" "$src" "$out"
    fi
done
echo "setup: ready ($root/$build/facenet, models in $root/models)"
