#!/usr/bin/env bash
# Zend/bench.php under `host php` against native `php8.2 -n`, interleaved (native, then each
# wasm build, N rounds) so a busy machine slows every side alike; prints bench.php's own
# Total (wall) and the process's CPU time (user+sys) per run, then the medians and ratios.
#
# Usage: guests/php/bench-vm.sh [-n ROUNDS] [-H HOST] PHP_CLI_WASM...
#   default: 3 rounds, target/release/host, bench.php of the PHP build (target/php)
# The first run of each .wasm compiles it (host php caches the .cwasm); a warm-up run per build
# is made first and not counted.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
ROUNDS=3
HOST=$ROOT/target/release/host
BENCH=${LAMP_PHP_BUILD:-$ROOT/target/php}/php-8.2.32/Zend/bench.php
while getopts n:H:b: o; do
  case $o in n) ROUNDS=$OPTARG ;; H) HOST=$OPTARG ;; b) BENCH=$OPTARG ;; *) exit 2 ;; esac
done
shift $((OPTIND - 1))
(($#)) || { echo "usage: $0 [-n ROUNDS] [-H HOST] [-b bench.php] PHP_CLI_WASM..." >&2; exit 2; }
[[ -x $HOST && -f $BENCH ]] || { echo "need $HOST and $BENCH" >&2; exit 2; }
HOST=$(realpath "$HOST")
wasms=()
for w in "$@"; do wasms+=("$(realpath "$w")"); done
set -- "${wasms[@]}"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$(dirname "$BENCH")"

one() { # label cmd... -> appends "total cpu" to $tmp/label
  local label=$1; shift
  /usr/bin/time -f '%U %S' -o "$tmp/time" "$@" bench.php >"$tmp/out" 2>"$tmp/err" ||
    { cat "$tmp/err" >&2; echo "$label failed" >&2; exit 1; }
  local total cpu
  total=$(awk '/^Total/ {print $2}' "$tmp/out")
  cpu=$(awk '{printf "%.3f", $1 + $2}' "$tmp/time")
  echo "$total $cpu" >>"$tmp/$label"
  printf '%-10s Total %s s  cpu %s s\n' "$label" "$total" "$cpu"
}

labels=(native)
i=0
for w in "$@"; do
  i=$((i + 1))
  labels+=("wasm$i")
  echo "wasm$i = $w ($(stat -c %s "$w") bytes)"
  LAMP_PHP_CLI=$w "$HOST" php bench.php >/dev/null # warm-up: compiles and caches the .cwasm
done
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
for ((r = 1; r <= ROUNDS; r++)); do
  one native php8.2 -n
  i=0
  for w in "$@"; do
    i=$((i + 1))
    LAMP_PHP_CLI=$w one "wasm$i" "$HOST" php
  done
done
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"

median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
nt=$(cut -d' ' -f1 "$tmp/native" | median)
nc=$(cut -d' ' -f2 "$tmp/native" | median)
echo "medians of $ROUNDS:"
for l in "${labels[@]}"; do
  t=$(cut -d' ' -f1 "$tmp/$l" | median)
  c=$(cut -d' ' -f2 "$tmp/$l" | median)
  printf '%-10s Total %.3f s (%.2fx native)  cpu %.3f s (%.2fx native)\n' "$l" "$t" \
    "$(echo "$t / $nt" | bc -l)" "$c" "$(echo "$c / $nc" | bc -l)"
done
