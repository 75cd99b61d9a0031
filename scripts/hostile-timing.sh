#!/usr/bin/env bash
# Times `gitmon validate` on each hostile descriptor, one process per file,
# against a baseline measured in the same run: validate on the SPEC §2
# example. Every hostile file must be rejected (exit 1) in under 100 ms.
set -euo pipefail
bin=${1:-bin/gitmon}
runs=${RUNS:-5}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
go run ./test/hostile/gen "$dir" >/dev/null
good=descriptors/testdata/good/payments.yaml

# best of $runs in microseconds into $us, and the exit code into $code
time_us() {
  local best=999999999 start end
  for _ in $(seq "$runs"); do
    start=$(date +%s%N)
    set +e; "$bin" validate "$1" >/dev/null 2>&1; code=$?; set -e
    end=$(date +%s%N)
    if (( (end - start) / 1000 < best )); then best=$(( (end - start) / 1000 )); fi
  done
  us=$best
}

time_us "$good"; base=$us
[ "$code" = 0 ] || { echo "baseline $good did not validate (exit $code)"; exit 1; }
printf '%-28s %10s %8s %s\n' file "wall µs" ratio exit
printf '%-28s %10d %8s %s\n' "baseline (payments.yaml)" "$base" "1.00" 0
worst=0 fail=0
for f in "$dir"/*.yaml; do
  time_us "$f"
  printf '%-28s %10d %8s %s\n' "$(basename "$f")" "$us" "$(awk "BEGIN{printf \"%.2f\", $us/$base}")" "$code"
  if (( us > worst )); then worst=$us; fi
  [ "$code" = 1 ] || { echo "  ^ expected exit 1"; fail=1; }
  (( us < 100000 )) || { echo "  ^ over 100 ms"; fail=1; }
done
echo "worst: ${worst} µs ($(awk "BEGIN{printf \"%.2f\", $worst/$base}")x the baseline); limit 100000 µs"
exit $fail
