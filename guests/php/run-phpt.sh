#!/usr/bin/env bash
# Runs PHP's own tests (of the PHP source that build.sh unpacked) against our php-cli.wasm:
# native php8.2 drives run-tests.php, and the PHP under test is a wrapper that execs
# `$LAMP_HOST php ...`. The results are compared with phpt-expected.txt: an unlisted test that
# does not pass, or a listed test that now passes, fails this script. The same tests then run
# on native php8.2, for the side-by-side figures (native's results decide nothing).
#
# Test infrastructure for the guest's tests only (never in a deployment): the suites whose
# helpers are servers in child processes get what WASI lacks from native helpers this script
# starts. ext/curl's: one `php -S` (below). ext/openssl's, ext/mysqli's and
# ext/standard/tests/network's: a process bridge (phpt-proc-bridge.php, native php8.2 on
# 127.0.0.1) and a proc_open() of userland (phpt-proc-open.php, prepended to their tests) that
# has it start a child PHP, which is this wrapper again (`host php`), so both ends of a test
# are our PHP; the tests of those suites may connect to loopback, the children may also listen
# on an ephemeral loopback port, and network's tests on any loopback port (their own servers).
#
# Usage: guests/php/run-phpt.sh [run-tests.php test paths...]   (default: $DEFAULT_TESTS below)
# Env:   LAMP_HOST  the host binary (default <repo>/target/debug/host)
#        LAMP_PHPT_ALLOW_OUTBOUND  comma-separated --allow-outbound rules for the PHP under
#                  test (the MySQL suites' server; with-mariadb sets it with MYSQL_TEST_*; the
#                  curl tests' server is added by this script)
#        MYSQL_TEST_*, PDO_MYSQL_TEST_*, PDOTEST_*  passed on to the PHP under test (the
#                  suites' settings); nothing else of this environment is. With
#                  MYSQL_TEST_PORT set, ext/mysqli and ext/pdo_mysql are in the default suites
#        LAMP_PHPT_NATIVE  0: skip the native run
#        LAMP_PHPT_KEEP  1: keep run-tests.php's logs (each test's result and skip reason)
#        LAMP_PHP_BUILD  build directory of build.sh (default <repo>/target/php)
#        LAMP_PHP_DIST  where build.sh put php-cli.wasm (default guests/php/dist)
#        JOBS  parallel test workers (default 2)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
HOST=${LAMP_HOST:-$ROOT/target/debug/host}
SRC=${LAMP_PHP_BUILD:-$ROOT/target/php}/php-8.2.32
# Physical: run-tests.php reports real paths, and phpt-compare.php strips this prefix.
[[ -d $SRC ]] && SRC=$(cd "$SRC" && pwd -P)
CLI=${LAMP_PHP_DIST:-$HERE/dist}/php-cli.wasm
EXPECTED=$HERE/phpt-expected.txt
JOBS=${JOBS:-2}
# Per test. The slowest that pass take 12 s here alone (ext/mysqli's mysqli_fetch_array_large:
# native 5 s) and more beside the other worker on a busy machine; tests/lang/045.phpt, which
# loops forever without timer signals, costs this much every run.
TIMEOUT=60

die() { echo "run-phpt: error: $*" >&2; exit 2; }
[[ -x $HOST ]] || die "no host binary at $HOST (cargo build -p host, or set LAMP_HOST)"
HOST=$(cd "$(dirname "$HOST")" && pwd)/$(basename "$HOST")
[[ -f $CLI ]] || die "no $CLI: run guests/php/build.sh first"
[[ -f $SRC/run-tests.php ]] || die "no PHP source at $SRC: run guests/php/build.sh first"
command -v php8.2 >/dev/null || die "php8.2 (native) is needed to drive run-tests.php: run scripts/setup.sh"

work=$(mktemp -d "${TMPDIR:-/tmp}/lamp-phpt.XXXXXX")
[[ -n ${LAMP_PHPT_KEEP:-} ]] && echo "run-phpt: run-tests.php's logs (run-tests.log, native.log) are kept in $work"
curl_server=
bridge=
cleanup() {
  [[ -n $curl_server ]] && kill "$curl_server" 2>/dev/null
  # The bridge kills its children (process groups of their own) on TERM; bounded wait.
  if [[ -n $bridge ]]; then
    kill "$bridge" 2>/dev/null
    timeout 5 tail --pid="$bridge" -f /dev/null || kill -9 "$bridge" 2>/dev/null
  fi
  [[ -n ${LAMP_PHPT_KEEP:-} ]] || rm -rf "$work"
}
trap cleanup EXIT

# The suites of what is built in; ext/mysqli's and ext/pdo_mysql's need a server, which
# `with-mariadb` (tests/mariadb) starts and describes in MYSQL_TEST_*: `make test` runs this
# script under it.
DEFAULT_TESTS=(tests/lang ext/json/tests ext/zlib/tests ext/pdo_sqlite/tests ext/sqlite3/tests
  ext/openssl/tests ext/standard/tests/network ext/libxml/tests ext/dom/tests ext/simplexml/tests
  ext/xml/tests ext/xmlreader/tests ext/xmlwriter/tests ext/sodium/tests ext/iconv/tests
  ext/bcmath/tests ext/exif/tests ext/fileinfo/tests ext/zip/tests ext/gd/tests ext/curl/tests
  ext/session/tests ext/standard/tests/http)
if [[ -n ${MYSQL_TEST_PORT:-} ]]; then
  DEFAULT_TESTS+=(ext/mysqli/tests ext/pdo_mysql/tests)
elif (($# == 0)); then
  echo "run-phpt: ext/mysqli and ext/pdo_mysql left out: no MYSQL_TEST_PORT (run this under" \
    "\`cargo run -p test-mariadb --bin with-mariadb --\`, as make test does)" >&2
fi
tests=("$@")
((${#tests[@]})) || tests=("${DEFAULT_TESTS[@]}")

# ext/curl's tests start their HTTP server (`php -S` with the suite's responder) through
# proc_open (tests/server.inc), which WASI has not: the guest's tests use one native server,
# started here, instead. The wrapper puts $work/curl first on the include path of a test of
# that suite, so its `include 'server.inc'` finds ours, which returns that server's address,
# and lets it connect there (--allow-outbound; the other suites' tests may not, so that their
# results do not depend on it). Natively each test starts its own, as usual. ($work is in the
# host's temp folder, which `host php` shows the guest as /tmp.)
curl_allow=()
if printf '%s\n' "${tests[@]}" | grep -q '^ext/curl'; then
  mkdir -p "$work/curl"
  (cd "$SRC/ext/curl/tests" && exec php8.2 -n -t . -S localhost:0 responder/get.inc \
    >/dev/null 2>"$work/curl/server.log") &
  curl_server=$!
  bound=
  for _ in $(seq 100); do
    bound=$(sed -n 's/.*Development Server (http:\/\/\(.*:[0-9]*\)) started.*/\1/p' "$work/curl/server.log" | head -1)
    [[ -n $bound ]] && break
    sleep 0.1
  done
  [[ -n $bound ]] || die "the curl tests' server did not start: $(cat "$work/curl/server.log")"
  cat >"$work/curl/server.inc" <<INC
<?php declare(strict_types=1);
// Written by guests/php/run-phpt.sh: the native server it started for ext/curl's tests.
function curl_cli_server_start() { return '$bound'; }
INC
  for rule in "$bound" "127.0.0.1:${bound##*:}" "[::1]:${bound##*:}"; do
    curl_allow+=(--allow-outbound "$rule")
  done
fi

# ext/openssl's TLS tests (ServerClientTestCase.inc) and ext/mysqli's protocol tests
# (fake_server.inc) start their server as a second PHP through proc_open, which WASI has not:
# the process bridge starts it for them (see the top). The wrapper gives their tests
# phpt-proc-open.php as auto_prepend_file (in place of run-tests.php's empty one); its copy and
# the bridge's address are in $work/proc, which the guest sees under /tmp. The tests that start
# PHP's test HTTP server (ext/standard/tests/http/server.inc, which forks) get
# phpt-http-server.php instead, which serves through the bridge too.
if printf '%s\n' "${tests[@]}" | grep -q -E '^ext/(openssl|mysqli|libxml|dom)|^ext/standard/tests/(network|http)'; then
  mkdir -p "$work/proc"
  cp "$HERE/phpt-proc-open.php" "$HERE/phpt-http-server.php" "$HERE/phpt-http-child.php" "$work/proc/"
  php8.2 -n "$HERE/phpt-proc-bridge.php" "$work/php" "$work/proc/bridge-address" \
    </dev/null >/dev/null 2>"$work/proc/bridge.log" &
  bridge=$!
  for _ in $(seq 100); do
    [[ -s $work/proc/bridge-address ]] && break
    sleep 0.1
  done
  [[ -s $work/proc/bridge-address ]] || die "the process bridge did not start: $(cat "$work/proc/bridge.log")"
fi

# run-tests' timeout kills only its `sh -c` child, which leaves the guest running on its own
# (tests/lang/045.phpt loops forever without timer signals): timeout(1) bounds every run, and
# passes on the TERM when it is killed itself.
allow=()
IFS=, read -ra rules <<<"${LAMP_PHPT_ALLOW_OUTBOUND:-}"
for rule in "${rules[@]}"; do
  [[ -n $rule ]] && allow+=(--allow-outbound "$rule")
done
# run-tests.php gives each test an environment (its --ENV-- section; the PDO tests' DSN,
# from their --REDIRECTTEST--; the CGI variables), which native PHP reads with getenv(), while
# `host php` passes nothing of its own environment to the guest: the wrapper passes with
# --env what differs from the environment run-tests.php was started with ($work/env0),
# so the guest sees what a test sets and none of this machine's shell. The host's WARN lines
# about what the network policy refused (a lookup, a connection, a listening socket) go to
# stderr, which run-tests.php reads as the test's output: they are dropped here, so that a
# test fails on what PHP printed (its own warning about the failed call), not on the host's.
# ext/curl's tests get stderr in stdout, filtered the same way: with CURLOPT_VERBOSE curl
# writes to stderr between lines of the response on stdout, in an order that two pipes (and
# run-tests.php reading both) would shuffle.
cat >"$work/php" <<WRAP
#!/usr/bin/env bash
env=()
while IFS= read -r -d '' kv; do
  case \$kv in SHLVL=* | _=* | PWD=* | OLDPWD=* | LAMP_PHPT_CHILD=*) continue ;; esac
  env+=(--env "\$kv")
done < <(env -0 | LC_ALL=C sort -z | LC_ALL=C comm -z -23 - "$work/env0")
args=("\$@")
grants=()
curl=
case " \$* " in
  *" $SRC/ext/libxml/tests/bug51903."* | *" $SRC/ext/dom/tests/ghsa-p3x9-6h7p-cgfc_"* | \
    *" $SRC/ext/standard/tests/network/http-stream."* | *" $SRC/ext/standard/tests/http/"*)
    # PHP's test HTTP server (see phpt-http-server.php): this test listens for a free port and
    # connects to its server, which listens on that port.
    for i in "\${!args[@]}"; do
      [[ \${args[i]} == auto_prepend_file= ]] && args[i]=auto_prepend_file=/tmp/${work##*/}/proc/phpt-http-server.php
    done
    grants+=(--allow-listen localhost:0 --allow-outbound '127.0.0.1:*') ;;
  *" /tmp/${work##*/}/proc/phpt-http-child.php "*)
    grants+=(--allow-listen '127.0.0.1:*') ;;
  *" -S localhost:"*)
    # PHP's built-in web server, which sapi/cli/tests/php_cli_server.inc starts through
    # proc_open (the bridge) on a port of its choosing.
    [[ -n \${LAMP_PHPT_CHILD:-} ]] && grants+=(--allow-listen 'localhost:*') ;;
  *" $SRC/ext/openssl/tests/"* | *" $SRC/ext/mysqli/tests/"* | *" $SRC/ext/standard/tests/network/"*)
    # Not under a test's own open_basedir, which would refuse it (those start no process).
    if [[ " \$* " != *" open_basedir="[!\ ]* ]]; then
      for i in "\${!args[@]}"; do
        [[ \${args[i]} == auto_prepend_file= ]] && args[i]=auto_prepend_file=/tmp/${work##*/}/proc/phpt-proc-open.php
      done
    fi
    grants+=(--allow-outbound '127.0.0.1:*' --allow-outbound '[::1]:*')
    if [[ -n \${LAMP_PHPT_CHILD:-} ]]; then
      grants+=(--allow-listen 127.0.0.1:0 --allow-listen '[::1]:0')
    fi
    case " \$* " in *" $SRC/ext/standard/tests/network/"*) grants+=(--allow-listen 'localhost:*') ;; esac
    # The test's own stdio (phpt-proc-open.php: a child's STDERR is the test's, as natively).
    args=(-d "lamp_phpt_stdio=/proc/\$\$/fd" "\${args[@]}") ;;
  *" $SRC/ext/fileinfo/tests/"*)
    # Two of them read "..", the parent of the working directory (the PHP source tree), which
    # a native php reads as any directory: granted here as a user would (--allow-dir).
    grants+=(--allow-dir "$(dirname "$SRC")") ;;
  *" $SRC/ext/curl/tests/"*)
    curl=1
    grants+=(${curl_allow[*]})
    args=(-d "include_path=/tmp/${work##*/}/curl:." "\${args[@]}") ;;
esac
php=(timeout -k 5 70 "$HOST" php --php-cli "$CLI" ${allow[*]} "\${grants[@]}" "\${env[@]}" "\${args[@]}")
refusals='^\S+\tphp\tWARN\trefused '
# ext/curl's tests read the guest's stderr with its stdout (their server's refusals aside).
if [[ -n \$curl ]]; then
  "\${php[@]}" 2>&1 | grep --line-buffered -a -v -P "\$refusals"
  exit "\${PIPESTATUS[0]}"
fi
# A child of the process bridge writes its stderr straight to the test's (the fake MySQL
# server's log lines interleave with the test's output, as natively): no filter in between.
[[ -n \${LAMP_PHPT_CHILD:-} ]] && exec "\${php[@]}"
{
  "\${php[@]}" 2>&1 1>&3 3>&- | grep --line-buffered -a -v -P "\$refusals" >&2
  status=\${PIPESTATUS[0]}
} 3>&1
exit "\$status"
WRAP
chmod +x "$work/php"
# The suites' own settings (ext/mysqli's and ext/pdo_mysql's server) are left out of the
# baseline, so that they reach the guest too.
TEST_PHP_EXECUTABLE="$work/php" env -0 | grep -zv -E '^(MYSQL_TEST_|PDO_MYSQL_TEST_|PDOTEST_)' |
  LC_ALL=C sort -z >"$work/env0"

# Warm the .cwasm cache once, so parallel workers do not all compile PHP at the same time.
# Not through the wrapper: compiling takes longer than its 70 s bound on a busy machine.
"$HOST" php --php-cli "$CLI" -n -r 'echo "php-cli.wasm: PHP ", PHP_VERSION, ", PHP_INT_SIZE ", PHP_INT_SIZE, "\n";'

cd "$SRC"
start=$SECONDS
TEST_PHP_EXECUTABLE="$work/php" php8.2 -n run-tests.php -j"$JOBS" -q --offline --no-color \
  --no-progress --set-timeout "$TIMEOUT" -W "$work/results.txt" "${tests[@]}" >"$work/run-tests.log" 2>&1 || true
echo "run-tests.php finished in $((SECONDS - start)) s"
[[ -s $work/results.txt ]] || { tail -30 "$work/run-tests.log"; die "run-tests.php wrote no results"; }

native=()
if [[ ${LAMP_PHPT_NATIVE:-1} != 0 ]]; then
  start=$SECONDS
  TEST_PHP_EXECUTABLE=$(command -v php8.2) php8.2 -n run-tests.php -j"$JOBS" -q --offline --no-color \
    --no-progress --set-timeout "$TIMEOUT" -W "$work/native.txt" "${tests[@]}" >"$work/native.log" 2>&1 || true
  echo "native php8.2 finished in $((SECONDS - start)) s"
  [[ -s $work/native.txt ]] && native=(--native "$work/native.txt")
fi

php8.2 -n "$HERE/phpt-compare.php" "$work/results.txt" "$EXPECTED" "$SRC" "${native[@]}" "${tests[@]}"
