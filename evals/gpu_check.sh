#!/usr/bin/env bash
# The GPU figures in one run, on a lent GPU machine (no network, no weights: models of the real
# architectures with random weights). Its image has torch and transformers but not
# langchain-core or pydantic-settings, so their wheels travel with the working tree:
#
#   make gpu-wheels                      # here: Python 3.12 x86-64 wheels into .gpu/wheels (ignored)
#   bash evals/gpu_check.sh              # there, carrying .gpu (not run on a GPU yet: a few minutes)
#
# Writes to $OUT (default .gpu/out): gpu.txt, classroom.txt (issue 16: 1, 8, 16 and 64 clients
# at once, serialised vs continuous, with --json), generate.txt (bench generate, causal and
# seq2seq). Each step's failure is recorded and the next still runs. A dry run here, on the CPU:
#   PY=.venv/bin/python DEVICE=cpu CLIENTS="1 4" PROMPTS=4 bash evals/gpu_check.sh
set -uo pipefail
OUT=${OUT:-.gpu/out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false \
  HF_HUB_DISABLE_PROGRESS_BARS=1 ANONYMIZED_TELEMETRY=False \
  COURSELAB_HOME=${TMPDIR:-/tmp}/courselab COURSELAB_CACHE=${TMPDIR:-/tmp}/courselab/cache
PY=${PY:-python3} DEVICE=${DEVICE:-cuda} CLIENTS=${CLIENTS:-1 8 16 64} PROMPTS=${PROMPTS:-64}

step() {  # step NAME FILE COMMAND...: run, keep stdout and stderr in FILE, note the exit code
  local name=$1 file=$2
  shift 2
  echo "== $name: $*" | tee -a "$OUT/$file"
  "$@" >>"$OUT/$file" 2>&1
  echo "== $name: exit $?" | tee -a "$OUT/$file"
}

step wheels gpu.txt "$PY" -m pip install --quiet --no-index --find-links .gpu/wheels \
  langchain-core langchain-text-splitters pydantic-settings python-dotenv platformdirs
[ "$DEVICE" = cpu ] || step gpu gpu.txt nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
step versions gpu.txt "$PY" -c "import torch, transformers; print(torch.__version__, \
transformers.__version__, torch.cuda.is_available() and torch.cuda.get_device_name())"
step classroom classroom.txt timeout 300 "$PY" evals/bench_classroom.py --random-weights \
  --device "$DEVICE" --clients $CLIENTS --new-tokens 32 --ways serialised continuous --json
step generate-causal generate.txt timeout 120 "$PY" -m assistant bench generate --device "$DEVICE" \
  --random-weights --prompts "$PROMPTS"
step generate-seq2seq generate.txt timeout 120 "$PY" -m assistant bench generate --device "$DEVICE" \
  --random-weights --prompts "$PROMPTS" --model flan-t5-base
grep -h "^== .*exit" "$OUT"/*.txt
