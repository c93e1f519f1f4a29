#!/usr/bin/env bash
# Runs PHP's own tests (of the PHP source that build.sh unpacked) against our php-cli.wasm:
# native php8.2 drives run-tests.php, and the PHP under test is a wrapper that execs
# `$LAMP_HOST php ...`. The results are compared with phpt-expected.txt: an unlisted test that
# does not pass, or a listed test that now passes, fails this script. The same tests then run
# on native php8.2, for the side-by-side figures (native's results decide nothing).
#
# Usage: guests/php/run-phpt.sh [run-tests.php test paths...]   (default: $DEFAULT_TESTS below)
# Env:   LAMP_HOST  the host binary (default <repo>/target/debug/host)
#        LAMP_PHPT_ALLOW_OUTBOUND  comma-separated --allow-outbound rules for the PHP under
#                  test (the MySQL tests' server; tests/it/mysql.rs sets it with MYSQL_TEST_*)
#        LAMP_PHPT_NATIVE  0: skip the native run
#        LAMP_PHP_BUILD  build directory of build.sh (default <repo>/target/php)
#        LAMP_PHP_DIST  where build.sh put php-cli.wasm (default guests/php/dist)
#        JOBS  parallel test workers (default 2)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
HOST=${LAMP_HOST:-$ROOT/target/debug/host}
SRC=${LAMP_PHP_BUILD:-$ROOT/target/php}/php-8.2.32
CLI=${LAMP_PHP_DIST:-$HERE/dist}/php-cli.wasm
EXPECTED=$HERE/phpt-expected.txt
JOBS=${JOBS:-2}

die() { echo "run-phpt: error: $*" >&2; exit 2; }
[[ -x $HOST ]] || die "no host binary at $HOST (cargo build -p host, or set LAMP_HOST)"
HOST=$(cd "$(dirname "$HOST")" && pwd)/$(basename "$HOST")
[[ -f $CLI ]] || die "no $CLI: run guests/php/build.sh first"
[[ -f $SRC/run-tests.php ]] || die "no PHP source at $SRC: run guests/php/build.sh first"
command -v php8.2 >/dev/null || die "php8.2 (native) is needed to drive run-tests.php: run scripts/setup.sh"

work=$(mktemp -d "${TMPDIR:-/tmp}/lamp-phpt.XXXXXX")
trap 'rm -rf "$work"' EXIT
# run-tests' timeout kills only its `sh -c` child, which leaves the guest running on its own
# (tests/lang/045.phpt loops forever without timer signals): timeout(1) bounds every run, and
# passes on the TERM when it is killed itself.
allow=()
IFS=, read -ra rules <<<"${LAMP_PHPT_ALLOW_OUTBOUND:-}"
for rule in "${rules[@]}"; do
  [[ -n $rule ]] && allow+=(--allow-outbound "$rule")
done
cat >"$work/php" <<WRAP
#!/bin/sh
exec timeout -k 5 30 "$HOST" php --php-cli "$CLI" ${allow[*]} "\$@"
WRAP
chmod +x "$work/php"

# The suites of what is built in and needs no server; ext/mysqli and ext/pdo_mysql need one
# (tests/it/mysql.rs runs them against its private MariaDB).
DEFAULT_TESTS=(tests/lang ext/json/tests ext/zlib/tests ext/pdo_sqlite/tests ext/sqlite3/tests
  ext/openssl/tests ext/standard/tests/network)
tests=("$@")
((${#tests[@]})) || tests=("${DEFAULT_TESTS[@]}")

# Warm the .cwasm cache once, so parallel workers do not all compile PHP at the same time.
"$work/php" -n -r 'echo "php-cli.wasm: PHP ", PHP_VERSION, ", PHP_INT_SIZE ", PHP_INT_SIZE, "\n";'

cd "$SRC"
start=$SECONDS
TEST_PHP_EXECUTABLE="$work/php" php8.2 -n run-tests.php -j"$JOBS" -q --offline --no-color \
  --no-progress --set-timeout 20 -W "$work/results.txt" "${tests[@]}" >"$work/run-tests.log" 2>&1 || true
echo "run-tests.php finished in $((SECONDS - start)) s"
[[ -s $work/results.txt ]] || { tail -30 "$work/run-tests.log"; die "run-tests.php wrote no results"; }

native=()
if [[ ${LAMP_PHPT_NATIVE:-1} != 0 ]]; then
  start=$SECONDS
  TEST_PHP_EXECUTABLE=$(command -v php8.2) php8.2 -n run-tests.php -j"$JOBS" -q --offline --no-color \
    --no-progress --set-timeout 20 -W "$work/native.txt" "${tests[@]}" >"$work/native.log" 2>&1 || true
  echo "native php8.2 finished in $((SECONDS - start)) s"
  [[ -s $work/native.txt ]] && native=(--native "$work/native.txt")
fi

php8.2 -n "$HERE/phpt-compare.php" "$work/results.txt" "$EXPECTED" "$SRC" "${native[@]}" "${tests[@]}"
