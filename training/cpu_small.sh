#!/usr/bin/env bash
# The `cpu-small` pipeline on a 2-core CPU: init -> SFT -> RFT -> eval, each stage timed.
#
#   bash training/cpu_small.sh [OUT_DIR]          # default OUT_DIR: $GENEDX_HOME/runs/cpu-small (or ~/.genedx/...)
#
# Needs a home with the knowledge base and split cases (see training/README.md, "Data"):
#   genedx data build && genedx data import CASES && genedx data simulate --cases-per-gene 4 --seed 0
#   genedx data split --by publication --seed 0
# Stage knobs: training/configs/sft-small.yaml (with a shorter SFT_STEPS budget, so that the whole pipeline
# fits in 30 minutes) and training/configs/cpu-small.yaml; extra overrides in SFT_SET / RFT_SET
# (e.g. RFT_SET="--set max_steps=20").
set -euo pipefail
HOME_DIR="${GENEDX_HOME:-$HOME/.genedx}"
OUT="${1:-$HOME_DIR/runs/cpu-small}"
CFG="$(cd "$(dirname "$0")" && pwd)/configs"
EVAL_SAMPLE="${EVAL_SAMPLE:-200}"
SFT_STEPS="${SFT_STEPS:-400}"
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
# init happens inside SFT (model: null builds a fresh `small` model and its tokenizer in $OUT/sft/init)
# shellcheck disable=SC2086
stage sft genedx train sft --config "$CFG/sft-small.yaml" --set "output_dir=$OUT/sft" --set "max_steps=$SFT_STEPS" \
  ${SFT_SET:-}
# shellcheck disable=SC2086
stage rft genedx train rft --config "$CFG/cpu-small.yaml" --set "model=$OUT/sft" --set "output_dir=$OUT/rft" \
  ${RFT_SET:-}
stage eval genedx eval --predictor "model:$OUT/rft/model" --mode retrieval --cases split:validation \
  --sample "$EVAL_SAMPLE" --batch-size 32 --name cpu-small-rft
printf 'total\t%s\n' $((SECONDS - t_start)) | tee -a "$log"
echo "timings: $log"
