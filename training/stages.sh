# Sourced by the pipeline scripts (cpu_small.sh, cpu_smollm.sh, gpu_smollm.sh): a stage timer that
# records each stage's wall seconds in $log (a TSV the script names before calling `stage`).
#   log="$OUT/timings.tsv"; stages_init; stage NAME CMD...
stages_init() {   # start $log with its header
  printf 'stage\tseconds\n' > "$log"
}

stage() {   # stage NAME CMD...: run, time, record
  local name="$1"; shift
  local t0=$SECONDS
  echo "== $name: $*"
  "$@"
  printf '%s\t%s\n' "$name" $((SECONDS - t0)) | tee -a "$log"
}
