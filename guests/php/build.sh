#!/usr/bin/env bash
# Builds PHP 8.2 for wasm32-wasip2 with clang-22 against Debian's wasi-libc 0.0~git20260423
# (real sockets over wasi:sockets; see guests/php/README.md and /work/shared/notes/):
#   dist/php-cli.wasm  the PHP CLI, a wasi:cli/command component (run by `host php`)
#   dist/php.wasm      the handler component of world lamp:handler/web-handler (embed SAPI +
#                      runtime/), pre-initialised by wizer
# Both are made from the core modules by wit-component directly: wasi-libc for wasip2 imports
# wasi:*@0.2.0 itself and carries its component type, so no preview 1 adapter is involved.
#
# Usage: guests/php/build.sh [--force]   (--force: build the core from source, cache or not)
# Env:   LAMP_CACHE  download and build cache, default ~/.cache/wasm-lamp
#        LAMP_PHP_BUILD  build directory, default <repo>/target/php
#        JOBS  make parallelism, default 2 (the machine is shared)
#        LAMP_PHP_WIZER  1 (default): pre-initialise the handler with wizer; 0: start PHP per instance
#        LAMP_PHP_OPT  the C optimisation flags of PHP itself, default -O2
#        LAMP_PHP_DIST  where the .wasm files go, default guests/php/dist
#        LAMP_PHP_LTO  1: link-time optimisation of PHP (clang -flto, wasm-ld); 0 (default): none
#        LAMP_PHP_WASM_OPT  flags for binaryen's wasm-opt on php-cli.wasm and the handler core
#                     module (e.g. -O3); empty (default): not run. binaryen comes from npm, pinned,
#                     into $LAMP_CACHE/binaryen-$BINARYEN_VERSION (needs node and npm)
#        LAMP_PHP_INCREMENTAL  1: when only new patches changed, apply them to the built tree
#                     and run make (developers; the result is cached like any core)
#        LAMP_PHP_VM  the Zend executor: SWITCH (default; regenerated with Zend/zend_vm_gen.php)
#                     or CALL (the tarball's executor, which falls back to CALL on wasm32)
#        LAMP_PHP_VM_ONE_ENTRY  1 (default): the SWITCH executor's loop gets one entry (its file
#                     compiles ~10x faster, bench.php within noise: README.md); 0: as generated
#
# Unchanged inputs (this script, patches/, compat/, runtime/, the tool, the WIT) make it a no-op;
# a change in runtime/, the tool or the part of this script after "the components" only
# relinks; anything else rebuilds PHP from a fresh tree.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

PHP_VERSION=8.2.32
PHP_DEB_VERSION=8.2.32-1~deb12u1
PHP_TARBALL=php8.2_${PHP_VERSION}.orig.tar.xz
# From the Checksums-Sha256 of Debian's php8.2_8.2.32-1~deb12u1.dsc (bookworm main).
PHP_SHA256=e02aa173c236c12791696254d607da680e6d5516f8f5c2339642de7c4f944bd2
# The C library: Debian's wasi-libc from trixie-backports (also in sid), the first with
# wasm32-wasip2 sockets that work for PHP (fcntl O_NONBLOCK, read/write on sockets). Mirrors
# drop superseded versions, so the .deb is pinned by hash and kept in $LAMP_CACHE.
WASI_LIBC_VERSION=0.0~git20260423.161b319-2~bpo13+1
WASI_LIBC_SUITE=trixie-backports
WASI_LIBC_DEB=wasi-libc_${WASI_LIBC_VERSION}_all.deb
WASI_LIBC_SHA256=578dd9d29188bfc3ebd9554fdd8b238324a4faac8c169bf0f882956e3fe187de

LAMP_CACHE=${LAMP_CACHE:-$HOME/.cache/wasm-lamp}
BUILD=${LAMP_PHP_BUILD:-$ROOT/target/php}
JOBS=${JOBS:-2}
DIST=${LAMP_PHP_DIST:-$HERE/dist}
PHP_OPT=${LAMP_PHP_OPT:--O2}
PHP_VM=${LAMP_PHP_VM:-SWITCH}
PHP_VM_ONE_ENTRY=${LAMP_PHP_VM_ONE_ENTRY:-1}
PHP_LTO=${LAMP_PHP_LTO:-0}
WASM_OPT_FLAGS=${LAMP_PHP_WASM_OPT:-}
BINARYEN_VERSION=132.0.0
case $PHP_VM in SWITCH|CALL) ;; *) echo "LAMP_PHP_VM must be SWITCH or CALL, not '$PHP_VM'" >&2; exit 2 ;; esac
case $PHP_VM_ONE_ENTRY in 0|1) ;; *) echo "LAMP_PHP_VM_ONE_ENTRY must be 0 or 1, not '$PHP_VM_ONE_ENTRY'" >&2; exit 2 ;; esac
if [[ $PHP_LTO == 1 && ! $PHP_OPT =~ ^-O[0-3]$ ]]; then
  echo "LAMP_PHP_LTO=1 takes LAMP_PHP_OPT=-O0..-O3 only, not '$PHP_OPT'" >&2; exit 2
fi
SRC=$BUILD/php-$PHP_VERSION
LLVM_BIN=/usr/lib/llvm-22/bin
FORCE=0
[[ ${1:-} == --force ]] && FORCE=1

log() { printf '[php %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

hash_files() { # stable hash of file names + contents
  (cd "$HERE" && find "$@" -type f ! -name '*.orig' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-16
}

# The C libraries of the extensions (zlib, SQLite, OpenSSL, libxml2, libsodium, libzip, gd's
# libpng, libjpeg-turbo, libwebp, FreeType, and curl): recipes and their cache.
# shellcheck source=libs.sh
source "$HERE/libs.sh"

# --- toolchain ------------------------------------------------------------------------------
need_setup=0
for t in clang-22 wasm-ld-22 "$LLVM_BIN/llvm-ar" php8.2 apt-get; do
  command -v "$t" >/dev/null || need_setup=1
done
[[ -f /usr/lib/llvm-22/lib/clang/22/lib/wasi/libclang_rt.builtins-wasm32.a ]] || need_setup=1
if ((need_setup)); then
  log "toolchain incomplete: running scripts/setup.sh"
  bash "$ROOT/scripts/setup.sh"
fi

# --- input hashes -----------------------------------------------------------------------------
# core: what changes the PHP build itself; glue: what only changes the handler link.
# This script counts for the core up to the components' section only.
COMPONENTS_MARK='^# --- the components'
CORE_HASH=$( { sed "/$COMPONENTS_MARK/,\$d" "$HERE/build.sh" | sha256sum | cut -c1-64; echo "$PHP_SHA256 $WASI_LIBC_SHA256 $PHP_OPT vm=$PHP_VM$([[ $PHP_VM_ONE_ENTRY == 0 ]] || echo -one-entry) lto=$PHP_LTO"; hash_files patches compat libs libs.sh; } | sha256sum | cut -c1-16)
GLUE_HASH=$( { echo "$CORE_HASH"; sha256sum "$HERE/build.sh" | cut -c1-64; echo "wizer=${LAMP_PHP_WIZER:-1} wasm-opt=$WASM_OPT_FLAGS"; hash_files runtime tool/src tool/Cargo.toml; sha256sum "$ROOT/wit/handler.wit"; } | sha256sum | cut -c1-16)

if ((!FORCE)) && [[ -f $BUILD/glue.stamp && $(cat "$BUILD/glue.stamp") == "$GLUE_HASH" && -f $DIST/php.wasm && -f $DIST/php-cli.wasm && -f $DIST/ssl/cert.pem && -f $DIST/ssl/openssl.cnf ]]; then
  log "up to date (inputs $GLUE_HASH): $DIST/php-cli.wasm, $DIST/php.wasm"
  exit 0
fi
mkdir -p "$BUILD" "$DIST" "$LAMP_CACHE"

# --- source -----------------------------------------------------------------------------------
# apt-get with a private sources list and state: the system's apt configuration (no deb-src,
# bookworm only) stays untouched. $1: a name for the state dir; $2: the sources.list line.
private_apt() {
  local apt=$LAMP_CACHE/apt-$1
  mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial"
  echo "$2" >"$apt/sources.list"
  APT_OPTS=(-o "Dir::Etc::sourcelist=$apt/sources.list" -o Dir::Etc::sourceparts=-
    -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache" -o Dir::State::status=/dev/null
    -o APT::Sandbox::User="$(id -un)")
  apt-get "${APT_OPTS[@]}" -qq update >&2
}

# The Debian mirror the system uses (deb.debian.org when it names none).
debian_mirror() {
  local mirror
  mirror=$(sed -n 's/^URIs: *\(http[^ ]*\/debian\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
  echo "${mirror:-http://deb.debian.org/debian}"
}

fetch_source() {
  local dir=$LAMP_CACHE/php-src
  local tarball=$dir/$PHP_TARBALL
  if [[ -f $tarball ]] && echo "$PHP_SHA256  $tarball" | sha256sum -c --quiet 2>/dev/null; then
    echo "$tarball"; return
  fi
  log "downloading $PHP_TARBALL from Debian's php8.2 source package"
  mkdir -p "$dir"
  private_apt src "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $(debian_mirror) bookworm main"
  (cd "$dir" && apt-get "${APT_OPTS[@]}" -qq source --download-only "php8.2=$PHP_DEB_VERSION" >&2)
  echo "$PHP_SHA256  $tarball" | sha256sum -c --quiet || die "$tarball: sha256 mismatch"
  echo "$tarball"
}

# The wasi-libc .deb (arch all: headers and libraries only), checked against its pinned hash.
fetch_wasi_libc() {
  local dir=$LAMP_CACHE/wasi-libc
  local deb=$dir/$WASI_LIBC_DEB
  if [[ -f $deb ]] && echo "$WASI_LIBC_SHA256  $deb" | sha256sum -c --quiet 2>/dev/null; then
    echo "$deb"; return
  fi
  log "downloading wasi-libc $WASI_LIBC_VERSION from Debian $WASI_LIBC_SUITE"
  mkdir -p "$dir"
  private_apt "$WASI_LIBC_SUITE" "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $(debian_mirror) $WASI_LIBC_SUITE main"
  (cd "$dir" && apt-get "${APT_OPTS[@]}" -qq download "wasi-libc=$WASI_LIBC_VERSION" >&2)
  echo "$WASI_LIBC_SHA256  $deb" | sha256sum -c --quiet || die "$deb: sha256 mismatch"
  echo "$deb"
}

# --- the wasm toolchain in $BUILD/bin ------------------------------------------------------
make_toolchain() {
  local sr=$BUILD/sysroot bin=$BUILD/bin lib=$BUILD/compat libc=$BUILD/wasi-libc deb
  deb=$(fetch_wasi_libc)
  rm -rf "$sr" "$bin" "$lib" "$libc"
  mkdir -p "$sr/include" "$sr/lib" "$bin" "$lib"
  dpkg -x "$deb" "$libc"
  # Private sysroot: with the default one clang also searches the host's /usr/include, and
  # glibc headers silently fill the gaps of wasi-libc.
  ln -s "$libc/usr/include/wasm32-wasip2" "$sr/include/wasm32-wasip2"
  ln -s "$libc/usr/lib/wasm32-wasip2" "$sr/lib/wasm32-wasip2"
  # clang's runtime library for the target (libclang-rt-22-dev-wasm32 ships one for every
  # wasi triple under lib/wasi/).
  local builtins
  builtins=$(clang-22 --target=wasm32-wasip2 -print-libgcc-file-name)
  [[ -f $builtins ]] || die "$builtins missing (clang's wasm32 builtins): run scripts/setup.sh"

  # clang runs wasm-opt from PATH after linking at -O; Debian's binaryen 108 cannot read
  # clang-22's output, so a do-nothing wasm-opt goes first on PATH.
  cat >"$bin/wasm-opt" <<'EOF'
#!/bin/sh
in=; out=
while [ $# -gt 0 ]; do
  case "$1" in -o) out=$2; shift ;; -*) ;; *) in=$1 ;; esac
  shift
done
[ -n "$in" ] && [ -n "$out" ] && [ "$in" != "$out" ] && cp "$in" "$out"
exit 0
EOF
  # The compiler wrapper: PHP's configure and Makefiles drop LDFLAGS/LIBS in places, so the
  # target, sysroot, compat header and link libraries are added here, every time.
  cat >"$bin/wasi-cc" <<EOF
#!/usr/bin/env bash
# Generated by guests/php/build.sh.
args=() link=1 force_include=1 lto=$PHP_LTO crt=$lib/crt_command.o executor=0
reducible=$([[ $PHP_VM == SWITCH && $PHP_VM_ONE_ENTRY == 1 ]] && echo 1 || echo 0)
for a in "\$@"; do
  case "\$a" in
    -mexec-model=reactor) crt=$lib/crt_reactor.o ;;
    # libtool's -export-dynamic exports ~2,200 symbols and keeps their dead code alive.
    -export-dynamic|-rdynamic|-Wl,-export-dynamic|-Wl,--export-dynamic) continue ;;
    -c|-S|-E|-M|-MM) link=0 ;;
    # autoconf's probes declare \`char f();\`, which clashes with wasi_compat.h's prototypes.
    conftest.c|*/conftest.c) force_include=0 ;;
    *.S|*.s) force_include=0 ;;
    # The sjlj runtime is called by code that LTO generates: it must be native code already
    # ("attempt to add bitcode file after LTO (__wasm_setjmp)").
    $HERE/compat/*) lto=0 ;;
    */Zend/zend_execute.c) executor=1 ;;
  esac
  args+=("\$a")
done
pre=(--target=wasm32-wasip2 --sysroot=$sr -isystem $HERE/compat/include -Qunused-arguments
  -Wno-deprecated -D_WASI_EMULATED_SIGNAL -D_WASI_EMULATED_MMAN -D_WASI_EMULATED_GETPID
  -D_WASI_EMULATED_PROCESS_CLOCKS
  -DZEND_ENABLE_ZVAL_LONG64=1
  -ffile-prefix-map=$SRC=/php-$PHP_VERSION -ffile-prefix-map=$HERE=/lamp
  -mllvm -wasm-enable-sjlj -mllvm -wasm-use-legacy-eh=false)
((force_include)) && pre+=(-include $HERE/compat/wasi_compat.h)
# The executor with one entry (single_entry_switch_vm) has no irreducible control flow left for
# LLVM's "Fix Irreducible Control Flow" pass to fix, but the pass still computes which of the
# function's ~30,000 blocks reach which (quadratic in LLVM 22: ~4 of its 5.5 CPU minutes, 5 GB):
# without it the object is byte-for-byte the same (checked with clang 22.1.8 on PHP 8.2.32).
((executor && reducible)) && pre+=(-mllvm -wasm-disable-fix-irreducible-control-flow-pass)
post=()
# Linking: wasm-ld itself (without -fuse-ld=lld clang-22 runs wasm-component-ld for wasip2);
# our entry points instead of wasi-libc's crt1 (compat/crt_*.c); chmod, fchmod, mprotect and
# rmdir sent to compat/stubs.c's __wrap_ versions, getprotobyname, gethostbyname to
# stubs_names.c's and select to select.c's (the libc defines them, so a plain definition of
# ours would be a duplicate symbol).
((link)) && pre+=(-fuse-ld=lld -nostartfiles)
((link)) && post+=(\$crt -Wl,-z,stack-size=8388608 -Wl,--strip-debug
  -Wl,--wrap=chmod -Wl,--wrap=fchmod -Wl,--wrap=mprotect -Wl,--wrap=rmdir
  -Wl,--wrap=getprotobyname -Wl,--wrap=gethostbyname -Wl,--wrap=select -L$lib -llampcompat
  -lwasi-emulated-signal -lwasi-emulated-mman -lwasi-emulated-getpid
  -lwasi-emulated-process-clocks)
# LTO (LAMP_PHP_LTO=1): PHP's sources compile to bitcode (not configure's probes nor the compat
# library); wasm-ld generates the code, so it needs the sjlj lowering flags and the
# optimisation level itself (clang passes neither to wasm-ld). Without -exception-model=wasm
# the LTO code generator drops the catch of every setjmp (longjmp then traps as an uncaught
# exception): a 10-line setjmp test shows it.
if ((lto)) && ((force_include)); then
  pre+=(-flto)
  ((link)) && post+=(-Wl,--lto-O${PHP_OPT#-O} -Wl,--lto-CGO${PHP_OPT#-O}
    -Wl,--mllvm=-wasm-enable-sjlj -Wl,--mllvm=-wasm-use-legacy-eh=false
    -Wl,--mllvm=-exception-model=wasm)
fi
# A library's source folder, mapped as libs.sh asks: given here rather than in its CFLAGS, which
# OpenSSL records in the library (OpenSSL_version(OPENSSL_CFLAGS)), making it depend on the path.
[[ -n \${LAMP_PREFIX_MAP:-} ]] && pre+=(-ffile-prefix-map=\$LAMP_PREFIX_MAP)
exec /usr/bin/clang-22 "\${pre[@]}" "\${args[@]}" "\${post[@]}"
EOF
  chmod +x "$bin/wasm-opt" "$bin/wasi-cc"
  # The compat library, linked into everything (configure's probes too, so they see it).
  for f in stubs.c stubs_names.c select.c exit.c sjlj.c sjlj_tag.S; do
    "$bin/wasi-cc" -O2 -c "$HERE/compat/$f" -o "$lib/${f%.*}.o"
  done
  "$LLVM_BIN/llvm-ar" rcs "$lib/liblampcompat.a" "$lib"/*.o
  # The entry points are objects of their own, one of which every link names (see wasi-cc).
  for f in crt_command.c crt_reactor.c; do
    "$bin/wasi-cc" -O2 -c "$HERE/compat/$f" -o "$lib/${f%.*}.o"
  done
}

# PHP stamps __DATE__/__TIME__ into its binaries (`php -v`: "built: ..."); clang takes them from
# SOURCE_DATE_EPOCH, here the release's own NEWS file, so every build of the same inputs is
# byte-identical (the layer zips depend on it).
pin_build_date() {
  SOURCE_DATE_EPOCH=$(stat -c %Y "$SRC/NEWS")
  export SOURCE_DATE_EPOCH
}

# The tarball's executor is generated for HYBRID, which falls back to the CALL VM on wasm32 (no
# global register variables): every opcode handler is a function reached by call_indirect, with
# opline in memory between handlers. The SWITCH VM is one function with a switch (a br_table)
# and opline in a local: bench.php runs ~3x faster. Zend/zend_vm_gen.php (run by the native
# php8.2) regenerates zend_vm_execute.h, zend_vm_opcodes.[ch] and zend_vm_handlers.h.
select_vm() {
  if [[ $PHP_VM != CALL ]]; then
    log "regenerating the Zend executor: $PHP_VM VM"
    php8.2 -n "$SRC/Zend/zend_vm_gen.php" --with-vm-kind="$PHP_VM" >"$BUILD/vm_gen.log" 2>&1 ||
      { cat "$BUILD/vm_gen.log"; die "zend_vm_gen.php failed"; }
  fi
  check_vm_kind
  if [[ $PHP_VM == SWITCH && $PHP_VM_ONE_ENTRY == 1 ]]; then single_entry_switch_vm; fi
}

# The generated SWITCH executor's loop has two entries: its head (`zend_vm_continue:`, then
# the `switch`) and, from the interrupt check before it, `zend_interrupt_helper_SPEC`, a label
# inside the switch. Wasm has only structured loops, so LLVM's WebAssembly backend rewrites
# such a loop ("Fix Irreducible Control Flow": every `goto zend_vm_continue`, one per opcode,
# then goes through a dispatch block), and in LLVM 22 that pass takes time quadratic in the
# function's size: 94% of compiling Zend/zend_execute.c, the longest file of the build by far.
# With LAMP_PHP_VM_ONE_ENTRY=1 (the default) the loop gets one entry: it starts at the switch,
# the interrupt before the first opcode is a case of it (-1, no handler's number), and
# `zend_vm_continue:` (load the next handler) is the end of the body. The same opcodes run in
# the same order; the pass then has nothing to fix and is left out for this file (wasi-cc), so
# it compiles in ~1.5 CPU minutes instead of 15 or more, with bench.php's time within noise
# (README.md, "The executor's loop, one entry").
single_entry_switch_vm() {
  php8.2 -n -r '
    $file = $argv[1];
    $vm = file_get_contents($file);
    $swaps = [
      "\tZEND_VM_LOOP_INTERRUPT_CHECK();\n\n\twhile (1) {\nzend_vm_continue:\n\t\tdispatch_handler = OPLINE->handler;\nzend_vm_dispatch:\n\t\tswitch ((int)(uintptr_t)dispatch_handler) {\n"
        => "\tdispatch_handler = UNEXPECTED(zend_atomic_bool_load_ex(&EG(vm_interrupt)))\n\t\t? (const void *)(uintptr_t)-1 : OPLINE->handler;\n\n\twhile (1) {\nzend_vm_dispatch:\n\t\tswitch ((int)(uintptr_t)dispatch_handler) {\ncase -1:\n\tgoto zend_interrupt_helper_SPEC;\n",
      "\tZEND_VM_NEXT_OPCODE(); /* Never reached */\n\t\t}\n\n\t}\n"
        => "\tZEND_VM_NEXT_OPCODE(); /* Never reached */\n\t\t}\nzend_vm_continue:\n\t\tdispatch_handler = OPLINE->handler;\n\t}\n",
    ];
    foreach ($swaps as $from => $to) {
      if (substr_count($vm, $from) !== 1) {
        fwrite(STDERR, "$file: the SWITCH executor is not as expected (" . json_encode(strtok($from, "\n")) . ")\n");
        exit(1);
      }
      $vm = str_replace($from, $to, $vm);
    }
    file_put_contents($file, $vm);
  ' "$SRC/Zend/zend_vm_execute.h" || die "could not give the SWITCH executor's loop one entry"
  log "the SWITCH executor's loop has one entry (Zend/zend_vm_execute.h)"
}

check_vm_kind() {
  local want=ZEND_VM_KIND_$PHP_VM
  if [[ $PHP_VM == CALL ]]; then
    grep -q "define ZEND_VM_KIND.*ZEND_VM_KIND_CALL" "$SRC/Zend/zend_vm_opcodes.h" || die "no CALL VM in zend_vm_opcodes.h"
  else
    grep -Eq "^#define ZEND_VM_KIND[[:space:]]+$want\$" "$SRC/Zend/zend_vm_opcodes.h" ||
      die "zend_vm_opcodes.h does not define ZEND_VM_KIND as $want"
  fi
}

patch_id() { echo "$(basename "$1") $(sha256sum <"$1" | cut -c1-64)"; }

build_core() {
  local tarball
  tarball=$(fetch_source)
  log "unpacking $(basename "$tarball")"
  rm -rf "$SRC" "$BUILD/core.stamp"
  tar -xJf "$tarball" -C "$BUILD"
  : >"$BUILD/patches.applied"
  for p in "$HERE"/patches/*.patch; do
    log "patch $(basename "$p")"
    patch -s -p1 -d "$SRC" <"$p"
    patch_id "$p" >>"$BUILD/patches.applied"
  done
  select_vm
  make_toolchain
  export PATH=$BUILD/bin:$PATH
  build_libs
  pin_build_date
  log "configure"
  (
    cd "$SRC"
    # pkg-config sees our wasm libraries only (libs.sh), never the host's (valgrind, oniguruma, ...),
    # through wasm32-wasi-pkg-config, which configure prefers when cross-compiling: a
    # PKG_CONFIG_LIBDIR of its environment would be kept in PHP's recorded configure command
    # (`php -i`), and with it the cache's path.
    # getaddrinfo: configure runs a test program for it, and when cross-compiling answers "no"
    # for anything but Linux; without it main/network.c would resolve with gethostbyname.
    # gethostbyname_r: netdb.h declares it, so configure's compile test finds the six-argument
    # form, but wasi-libc does not define it (the link fails); PHP then uses gethostbyname.
    printf '#!/usr/bin/env bash\nPKG_CONFIG_LIBDIR=%q PKG_CONFIG_PATH= exec pkg-config "$@"\n' \
      "$LIBS_PKG_CONFIG_LIBDIR" >"$BUILD/bin/wasm32-wasi-pkg-config"
    chmod +x "$BUILD/bin/wasm32-wasi-pkg-config"
    CC="$BUILD/bin/wasi-cc" CFLAGS="$PHP_OPT" \
    AR="$LLVM_BIN/llvm-ar" RANLIB="$LLVM_BIN/llvm-ranlib" NM="$LLVM_BIN/llvm-nm" \
    ac_cv_func_getrusage=no ac_cv_struct_flock=no \
    ac_cv_func_getaddrinfo=yes ac_cv_func_which_gethostbyname_r=no \
    ./configure --host=wasm32-wasi --build=x86_64-pc-linux-gnu --prefix=/usr/local \
      --disable-all --enable-cli --enable-embed=static --disable-cgi --disable-phpdbg \
      --without-pear --without-pcre-jit --disable-fiber-asm --disable-zend-signals \
      --disable-opcache --without-valgrind \
      --enable-ctype --enable-tokenizer --enable-filter --enable-mbstring --disable-mbregex \
      --enable-session \
      --with-zlib --with-openssl --enable-mysqlnd --with-mysqli=mysqlnd --enable-pdo \
      --with-pdo-mysql=mysqlnd --with-pdo-sqlite --with-sqlite3 \
      --with-libxml --enable-dom --enable-xml --enable-simplexml --enable-xmlreader \
      --enable-xmlwriter --with-sodium --with-iconv --enable-bcmath --enable-exif --enable-fileinfo \
      --with-zip --enable-gd --with-jpeg --with-webp --with-freetype --with-curl \
      >"$BUILD/configure.log" 2>&1 || { tail -30 "$BUILD/configure.log"; die "configure failed (log: $BUILD/configure.log)"; }
    # gd's own code (libgd) for size, like its libraries (libs.sh): GD_CFLAGS comes after PHP's
    # CFLAGS in each of its compile rules, so its -Oz wins over -O2.
    sed -i 's/^GD_CFLAGS = /GD_CFLAGS = -Oz /' Makefile
  )
  log "make -j$JOBS (a few minutes; log: $BUILD/make.log)"
  # Zend/zend_execute.c (the SWITCH VM: one function of every opcode handler) is still the
  # longest file (~1.5 CPU minutes with one entry, 15 or more without: single_entry_switch_vm);
  # named first, it starts at once and everything else compiles beside it, instead of after a
  # quarter of the tree with the other core idle at the end (one make, one job server: `all`
  # waits for it as for any prerequisite).
  (cd "$SRC" && nice make -j"$JOBS" Zend/zend_execute.lo all >"$BUILD/make.log" 2>&1) || {
    grep -E 'error|undefined' "$BUILD/make.log" | head -40
    die "make failed (log: $BUILD/make.log)"
  }
  echo "$CORE_HASH" >"$BUILD/core.stamp"
}

# --- the components (a change from here on only relinks: see CORE_HASH) ---------------------

# The built core is also kept in $LAMP_CACHE/php-core/CORE_HASH.tar.zst (PHP's tree after
# `make`, without object files: ~40 MB), so that a fresh clone on a machine that built these
# inputs before (CI) unpacks it in seconds instead of building for 20 minutes. The newest
# three are kept.
CORE_CACHE=$LAMP_CACHE/php-core/$CORE_HASH.tar.zst
save_core() {
  mkdir -p "$(dirname "$CORE_CACHE")"
  tar -C "$BUILD" --exclude='*.o' --exclude='*.lo' --exclude='*.dep' --exclude='.libs' \
    -cf - "php-$PHP_VERSION" | zstd -q -T0 -3 -o "$CORE_CACHE.tmp" && mv "$CORE_CACHE.tmp" "$CORE_CACHE"
  ls -t "$(dirname "$CORE_CACHE")"/*.tar.zst | tail -n +4 | xargs -r rm -f
  log "core cached: $CORE_CACHE ($(stat -c %s "$CORE_CACHE") bytes)"
}
restore_core() {
  log "PHP core from the cache: $CORE_CACHE"
  rm -rf "$SRC" "$BUILD/core.stamp"
  zstd -q -dc "$CORE_CACHE" | tar -C "$BUILD" -xf - || die "$CORE_CACHE: cannot unpack (delete it to rebuild)"
  # The link of the handler below needs the compiler wrapper and the libraries' archives.
  make_toolchain
  export PATH=$BUILD/bin:$PATH
  build_libs
  echo "$CORE_HASH" >"$BUILD/core.stamp"
}

# LAMP_PHP_INCREMENTAL=1 (a developer's shortcut, never the default): for new patches, the
# compat library or a library's recipe (not its headers), apply the new patches to the built
# tree, relink against the libraries' current builds and let make recompile what the patches
# touch, instead of building from a fresh tree. Changing an applied patch still rebuilds.
build_incremental() {
  log "incremental build in $SRC (LAMP_PHP_INCREMENTAL=1): new patches, then make"
  make_toolchain
  export PATH=$BUILD/bin:$PATH
  build_libs
  local p id
  for p in "$HERE"/patches/*.patch; do
    id=$(patch_id "$p")
    grep -qxF "$id" "$BUILD/patches.applied" && continue
    grep -q "^$(basename "$p") " "$BUILD/patches.applied" &&
      die "$(basename "$p") changed since it was applied: build without LAMP_PHP_INCREMENTAL"
    log "patch $(basename "$p")"
    patch -s -p1 -d "$SRC" <"$p"
    echo "$id" >>"$BUILD/patches.applied"
  done
  pin_build_date
  # A library rebuilt (its recipe or the compat library changed; headers must not have) is
  # linked from its new place.
  local name
  for name in "${WASM_LIBS[@]}"; do
    sed -i "s#$LAMP_CACHE/wasm-libs/$name-[0-9a-f]\{16\}#$(lib_prefix "$name")#g" "$SRC/Makefile"
  done
  # The compat library is not a prerequisite in PHP's Makefile: relink the CLI in any case.
  rm -f "$SRC/sapi/cli/php"
  (cd "$SRC" && nice make -j"$JOBS" >>"$BUILD/make.log" 2>&1) || die "make failed (log: $BUILD/make.log)"
  echo "$CORE_HASH" >"$BUILD/core.stamp"
}

# With the host in the same build, wasmtime gets the same features as in `cargo test
# --workspace`, so it is compiled once for both instead of twice. Without PHP's
# SOURCE_DATE_EPOCH: some of cargo's build scripts watch it, and 11 crates (2 min) would be
# rebuilt here and again by the next plain `cargo build`.
build_tool() {
  (cd "$ROOT" && env -u SOURCE_DATE_EPOCH cargo build -q -p lamp-php-tool -p host)
}

start=$SECONDS
if ((FORCE)) || [[ ! -f $BUILD/core.stamp || $(cat "$BUILD/core.stamp") != "$CORE_HASH" ]]; then
  if ((!FORCE)) && [[ ${LAMP_PHP_INCREMENTAL:-0} == 1 && -f $BUILD/patches.applied && -f $SRC/Makefile ]]; then
    build_incremental
    save_core
  elif ((!FORCE)) && [[ -f $CORE_CACHE ]]; then
    restore_core
  else
    # The tool's cargo build (wasmtime's, with the host's: minutes from scratch) runs beside
    # the core's, whose last minutes are Zend/zend_execute.c alone on one core.
    log "building lamp-php-tool beside the core (log: $BUILD/tool-build.log)"
    mkdir -p "$BUILD"
    build_tool >"$BUILD/tool-build.log" 2>&1 &
    tool_build=$!
    build_core
    save_core
  fi
else
  log "PHP core up to date (inputs $CORE_HASH)"
fi
export PATH=$BUILD/bin:$PATH
pin_build_date

# binaryen from npm (Debian's 108 cannot read wasm exceptions), pinned, installed once.
wasm_opt() { # in out
  local dir=$LAMP_CACHE/binaryen-$BINARYEN_VERSION
  if [[ ! -f $dir/node_modules/binaryen/bin/wasm-opt ]]; then
    command -v npm >/dev/null || die "LAMP_PHP_WASM_OPT needs node and npm (apt-get install nodejs npm)"
    log "installing binaryen $BINARYEN_VERSION from npm into $dir"
    rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
    npm install --prefix "$dir.tmp" --no-audit --no-fund --no-save -s "binaryen@$BINARYEN_VERSION" >&2
    rm -rf "$dir" && mv "$dir.tmp" "$dir"
  fi
  log "wasm-opt $WASM_OPT_FLAGS $(basename "$1")"
  # shellcheck disable=SC2086 # the flags are words
  node "$dir/node_modules/binaryen/bin/wasm-opt" $WASM_OPT_FLAGS "$1" -o "$2"
}

# dist/ssl/cert.pem: the CA certificates PHP trusts (OpenSSL's default file for OPENSSLDIR
# /etc/ssl, where the host shows this folder to PHP guests, read-only; openssl.cnf beside it): Mozilla's roots from
# Debian's ca-certificates, pinned like the libc, concatenated in name order as
# update-ca-certificates does. They include the Amazon roots that RDS Proxy's certificates
# chain to (a direct Aurora/RDS connection needs AWS's RDS bundle, given with PDO's SSL_CA).
CA_CERTIFICATES_VERSION=20250419~deb12u2
CA_CERTIFICATES_SUITE=bookworm-security
CA_CERTIFICATES_SHA256=b9f76b5271a7ac373fd5e7e1b5b826a71ddd702b42a0d104955ecb1acfffc94b
ca_bundle() {
  local dir=$LAMP_CACHE/ca-certificates deb
  deb=$dir/ca-certificates_${CA_CERTIFICATES_VERSION}_all.deb
  if ! { [[ -f $deb ]] && echo "$CA_CERTIFICATES_SHA256  $deb" | sha256sum -c --quiet 2>/dev/null; }; then
    log "downloading ca-certificates $CA_CERTIFICATES_VERSION from Debian $CA_CERTIFICATES_SUITE"
    mkdir -p "$dir"
    private_apt "$CA_CERTIFICATES_SUITE" "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $(debian_mirror | sed 's#/debian$#/debian-security#') $CA_CERTIFICATES_SUITE main"
    (cd "$dir" && apt-get "${APT_OPTS[@]}" -qq download "ca-certificates=$CA_CERTIFICATES_VERSION" >&2) ||
      die "ca-certificates $CA_CERTIFICATES_VERSION: download failed (put $(basename "$deb") in $dir)"
    echo "$CA_CERTIFICATES_SHA256  $deb" | sha256sum -c --quiet || die "$deb: sha256 mismatch"
  fi
  rm -rf "$BUILD/ca" && mkdir -p "$BUILD/ca" "$DIST/ssl"
  dpkg -x "$deb" "$BUILD/ca"
  (cd "$BUILD/ca/usr/share/ca-certificates/mozilla" && find . -name '*.crt' -print0 | LC_ALL=C sort -z |
    xargs -0 cat) >"$DIST/ssl/cert.pem"
  log "ssl/cert.pem: $(grep -c 'BEGIN CERTIFICATE' "$DIST/ssl/cert.pem") CA certificates"
  # Beside it, OpenSSL's default configuration (what openssl_pkey_new() and CSRs read without
  # a config of their own), from the tarball of the OpenSSL that PHP links (libs.sh).
  local tarball
  tarball=$(fetch_lib_source openssl)
  tar -xzOf "$tarball" --wildcards '*/apps/openssl.cnf' >"$DIST/ssl/openssl.cnf" ||
    die "$tarball: no apps/openssl.cnf"
}
ca_bundle

if [[ -n ${tool_build:-} ]]; then
  wait "$tool_build" || { tail -30 "$BUILD/tool-build.log"; die "building lamp-php-tool failed (log: $BUILD/tool-build.log)"; }
fi
log "building lamp-php-tool"
build_tool
TOOL=${CARGO_TARGET_DIR:-$ROOT/target}/debug/lamp-php-tool
GLUE=$BUILD/glue
rm -rf "$GLUE" && mkdir -p "$GLUE"

# php-cli.wasm: PHP's CLI is a command (compat/crt_command.c exports wasi:cli/run).
cli_core=$SRC/sapi/cli/php
if [[ -n $WASM_OPT_FLAGS ]]; then
  wasm_opt "$cli_core" "$GLUE/php-cli-opt.wasm"
  cli_core=$GLUE/php-cli-opt.wasm
fi
"$TOOL" componentize "$cli_core" -o "$DIST/php-cli.wasm"
log "php-cli.wasm: $(stat -c %s "$DIST/php-cli.wasm") bytes"

# php.wasm: the handler.
if [[ -d $HERE/runtime ]] && compgen -G "$HERE/runtime/*.c" >/dev/null; then
  "$TOOL" bindgen-c --wit "$ROOT/wit/handler.wit" --world web-handler --out-dir "$GLUE"
  # The prelude, embedded as a C string (line numbers kept: only "<?php" is cut).
  php8.2 -n -r '$s = substr(file_get_contents($argv[1]), 5);
    echo "static const char LAMP_PRELUDE[] = ", json_encode($s, JSON_UNESCAPED_SLASHES), ";\n";' \
    "$HERE/runtime/prelude.php" >"$GLUE/lamp_prelude.h"
  incs=(-I"$GLUE" -I"$SRC" -I"$SRC/main" -I"$SRC/Zend" -I"$SRC/TSRM" -I"$SRC/sapi/embed")
  objs=()
  for c in "$HERE"/runtime/*.c "$GLUE"/*.c; do
    o=$GLUE/$(basename "${c%.c}").o
    wasi-cc -O2 -Wall -D_GNU_SOURCE "${incs[@]}" -c "$c" -o "$o"
    objs+=("$o")
  done
  log "linking the handler core module"
  # A reactor: no main; _initialize (compat/crt_reactor.c) runs constructors once, lamp-init
  # starts PHP (and is what wizer runs at build time), the exports serve one request per call.
  # The extensions' libraries as PHP's own link has them (EXTRA_LDFLAGS, EXTRA_LIBS: libs.sh's
  # OpenSSL, SQLite, zlib, and -ldl: wasi-libc keeps dlopen & co. in libdl.a).
  read -ra extra <<<"$(sed -n 's/^EXTRA_LDFLAGS = //p; s/^EXTRA_LIBS = //p' "$SRC/Makefile" | tr '\n' ' ')"
  # stat, lstat, access and chdir (and the fstatat inside wasi-libc's chdir) go through
  # runtime/lamp_preload.c first: what the snapshot already knows is not asked of the host.
  vouched=(-Wl,--wrap=stat -Wl,--wrap=lstat -Wl,--wrap=access -Wl,--wrap=chdir -Wl,--wrap=fstatat)
  wasi-cc "$PHP_OPT" -mexec-model=reactor "${vouched[@]}" -o "$GLUE/php-handler-core.wasm" "${objs[@]}" \
    "$GLUE"/*_component_type.o "$SRC/libs/libphp.a" "${extra[@]}"
  core=$GLUE/php-handler-core.wasm
  if [[ -n $WASM_OPT_FLAGS ]]; then
    wasm_opt "$core" "$GLUE/php-handler-opt.wasm"
    core=$GLUE/php-handler-opt.wasm
  fi
  log "componentizing"
  # lamp-init becomes a component export for wizer to call (it stays in php.wasm: see
  # tool/src/wizer.rs); so does lamp-preload, which the host runs the same way on php.wasm to
  # snapshot a deployment's compiled code (runtime/lamp_preload.c).
  "$TOOL" componentize "$core" --init-export lamp-init --init-export lamp-preload -o "$GLUE/php-handler.wasm"
  if [[ ${LAMP_PHP_WIZER:-1} == 1 ]]; then
    log "pre-initialising with wizer (lamp-init)"
    "$TOOL" wizer "$GLUE/php-handler.wasm" -o "$DIST/php.wasm" --init-func lamp-init
  else
    cp "$GLUE/php-handler.wasm" "$DIST/php.wasm"
  fi
  log "php.wasm: $(stat -c %s "$DIST/php.wasm") bytes"
fi

echo "$GLUE_HASH" >"$BUILD/glue.stamp"
log "done in $((SECONDS - start)) s"
