#!/usr/bin/env bash
# The pretrained-base model path on one GPU (H100/H200), a few minutes: convert SmolLM2-135M-Instruct ->
# SFT -> RFT (GRPO, full fine-tuning; LoRA too with LORA=1) -> eval, with step time, completion tokens/s,
# peak GPU memory and validation metrics written to OUT/gpu_results.md (plus OUT/timings.tsv).
#
#   bash training/gpu_smollm.sh OUT_DIR [CASES]
#
# CASES: phenopackets / JSONL to import (default: the bundled sample, data/phenopackets/sample); the
# home is OUT/home unless GENEDX_HOME is set and already holds split cases. Knobs: SFT_SET, RFT_SET
# ("--set k=v ..."), EVAL_SAMPLE (default 300), LORA=1 (also time a LoRA GRPO run).
set -euo pipefail
OUT="${1:?usage: bash training/gpu_smollm.sh OUT_DIR [CASES]}"
CASES="${2:-$(cd "$(dirname "$0")/.." && pwd)/data/phenopackets/sample}"
CFG="$(cd "$(dirname "$0")" && pwd)/configs"
EVAL_SAMPLE="${EVAL_SAMPLE:-300}"
mkdir -p "$OUT"
export GENEDX_HOME="${GENEDX_HOME:-$OUT/home}"
log="$OUT/timings.tsv"
# shellcheck source=training/stages.sh
. "$(dirname "$0")/stages.sh"
stages_init

python - <<'PY' || { echo "error: no CUDA GPU visible to torch" >&2; exit 2; }
import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)
PY
if ! genedx data stats --json >/dev/null 2>&1 || [ "$(genedx data stats --json | python -c 'import json,sys; print(json.load(sys.stdin).get("cases", 0))')" = "0" ]; then
  stage data bash -c "genedx data build && genedx data import '$CASES' && genedx data simulate --cases-per-gene 4 --seed 0 && genedx data split --by publication --validation 0.2 --seed 0"
fi
stage convert genedx model init --from smollm2-135m-instruct --out "$OUT/base" --overwrite
# shellcheck disable=SC2086
stage sft genedx train sft --config "$CFG/sft-smollm-gpu.yaml" --set "model=$OUT/base" --set "output_dir=$OUT/sft" \
  --set overwrite=true ${SFT_SET:-} 2>&1 | tee "$OUT/sft.log"
# shellcheck disable=SC2086
stage rft genedx train rft --config "$CFG/rft-smollm-gpu.yaml" --set "model=$OUT/sft" --set "output_dir=$OUT/rft" \
  ${RFT_SET:-} 2>&1 | tee "$OUT/rft.log"
if [ "${LORA:-0}" = "1" ]; then
  # shellcheck disable=SC2086
  stage rft_lora genedx train rft --config "$CFG/rft-smollm-gpu.yaml" --set "model=$OUT/sft" --set "output_dir=$OUT/rft-lora" \
    --set use_lora=true --set learning_rate_multiplier=20 --set max_steps=30 --set run_name=rft-smollm-gpu-lora \
    ${RFT_SET:-} 2>&1 | tee "$OUT/rft_lora.log"
fi
for m in base sft rft; do
  dir="$OUT/$m"; [ "$m" = rft ] && dir="$OUT/rft/model"
  stage "eval_$m" genedx eval --predictor "model:$dir" --mode retrieval --cases split:validation --sample "$EVAL_SAMPLE" \
    --seed 0 --batch-size 64 --name "gpu-$m" --json > "$OUT/eval_$m.json"
done
genedx eval --predictor ranker --cases split:validation --sample "$EVAL_SAMPLE" --seed 0 --name gpu-ranker --json > "$OUT/eval_ranker.json"

python - "$OUT" <<'PY'
import json, re, statistics, sys, subprocess
from pathlib import Path
out = Path(sys.argv[1])
import torch
lines = [f"# GPU results ({torch.cuda.get_device_name(0)})", ""]
sft = json.loads((out / "sft" / "genedx_model.json").read_text())
lines.append(f"- SFT: {sft['steps']} steps, {sft['seconds_per_step']} s/step, peak GPU memory {sft.get('peak_gpu_memory_gb')} GiB")
for name in ("rft", "rft_lora"):
    p = out / f"{name}.log"
    if not p.exists():
        continue
    txt = p.read_text()
    steps = [float(x) for x in re.findall(r"\[train\] step \d+: .*? step ([0-9.]+) s", txt)]
    lines.append(f"- {name}: {len(steps)} steps, median step {statistics.median(steps) if steps else float('nan'):.2f} s")
    lines += ["  " + l for l in re.findall(r"\[validation\].*", txt)]
for m in ("ranker", "base", "sft", "rft"):
    r = json.loads((out / f"eval_{m}.json").read_text())
    mt = r["metrics"]
    def v(k):
        e = mt.get(k) or mt.get(k.replace("top", "top@"))
        return f"{100 * e['value']:.1f}" if e else "-"
    lines.append(f"- eval {m}: n={r['n']} top@1 {v('top1')} top@5 {v('top5')} top@max {v('topmax')} "
                 f"well-formed {v('well_formed')} ({r.get('cases_per_second')} cases/s)")
(out / "gpu_results.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
PY
# the RFT run's own per-step metrics (completion tokens/s, peak GPU memory) are in the database: genedx runs show
genedx runs list > "$OUT/runs.txt" 2>&1 || true
cp "$OUT/rft/model/README.md" "$OUT/model_card.md" 2>/dev/null || true
echo "results: $OUT/gpu_results.md"
