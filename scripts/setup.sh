#!/usr/bin/env bash
# Installs what the build and the tests need on a fresh Debian 12 machine, idempotently:
# apt packages (clang-22 for the PHP build, native php8.2 as the benchmark peer and PHP test
# runner, MariaDB for the MySQL tests), rustup targets for the guests and the static bootstrap.
# Quick when all is present.
set -euo pipefail

APT_PACKAGES=(
  clang-22 lld-22 libclang-rt-22-dev-wasm32             # PHP -> wasm32-wasip2 (its wasi-libc: build.sh)
  llvm-22                                                # llvm-ar/llvm-nm for wasm objects (PHP build)
  php8.2-cli php8.2-curl                                 # peer for benchmarks, run-tests.php driver
  php8.2-mysql php8.2-sqlite3                            # native peers of the guest's mysqli/pdo_mysql, pdo_sqlite/sqlite3
  php8.2-xml php8.2-bcmath                               # native peers of the guest's XML family and bcmath (PHP's tests side by side)
  php8.2-gd php8.2-zip                                   # native peers of the guest's gd and zip (PHP's tests side by side)
  fonts-dejavu-core                                      # the TrueType font gd renders in tests/it/extensions.rs
  mariadb-server mariadb-client                          # the MySQL tests' and benchmark's private server (tests/mariadb), never the system one
  nginx-light php8.2-fpm wrk                             # web benchmark: nginx + PHP-FPM peer, load generator
  php-twig php-symfony-http-foundation                   # framework page benchmark: its vendor code (tests/bench/framework)
  adminer                                                # a real app under host serve against the private MariaDB (tests/it/apps.rs)
  wordpress wordpress-theme-twentytwentythree            # a second real app under host serve, its default theme (tests/it/apps.rs)
  musl-tools file xz-utils make                          # static bootstrap, checks, tarball
  curl patch                                             # wasmtime's crate and our patches to it (below)
  strace                                                 # counts the file system calls a snapshot request makes (tests/it/snapshot.rs)
  procps                                                 # pgrep: stops the other library builds when one fails (guests/php/libs.sh)
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross            # the arm64 layer's static bootstrap
  qemu-user-static                                       # runs it in the layer tests
  dpkg-dev                                               # apt-get source
  tcl                                                    # tclsh: generates SQLite's amalgamation (guests/php/libs.sh)
  autoconf automake libtool                              # libsodium's configure; config.sub for libxml2 and libpng (guests/php/libs.sh)
  cmake                                                  # libzip, libjpeg-turbo, libwebp, FreeType (guests/php/libs.sh)
)
RUST_TARGETS=(wasm32-wasip1 wasm32-wasip2 x86_64-unknown-linux-musl aarch64-unknown-linux-musl)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing apt packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  # Packages with a service (mariadb-server, nginx-light, php8.2-fpm) try to start it when
  # installed; the tests start their own, and CI has no init system to start one with. A
  # policy-rc.d that says 101 ("action forbidden") keeps invoke-rc.d and deb-systemd-invoke
  # from trying; Docker images ship one already, so only a missing one is added, then removed.
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# scripts/setup.sh: no service starts during its apt-get install\nexit 101\n' \
      | $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
    trap '$SUDO rm -f "$policy"' EXIT
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

installed_targets=$(rustup target list --installed)
for t in "${RUST_TARGETS[@]}"; do
  grep -qx "$t" <<<"$installed_targets" || { echo "setup: adding rustup target $t"; rustup target add "$t"; }
done

# cfn-lint validates layer/template.yaml (tests/it/layers.rs).
cfn-lint --version >/dev/null 2>&1 || { echo "setup: installing cfn-lint"; python3 -m pip install -q cfn-lint; }

# Crates we patch (patches/CRATE/*.patch, each says what and why): Cargo.toml's
# [patch.crates-io] builds them from vendor/CRATE, which is made here from the crate crates.io
# serves (cargo's download cache when it has it), checked against the sha256 Cargo.lock has for
# it, with the patches applied; made again only when the version or a patch changes.
vendor_crate() {
  local name=$1 version=$2 sha256=$3
  local root dest key tmp crate p
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  dest=$root/vendor/$name
  key=$( { echo "$version $sha256"; cat "$root/patches/$name"/*.patch; } | sha256sum | cut -c1-16)
  [[ -f $dest/.lamp-vendored && $(cat "$dest/.lamp-vendored") == "$key" ]] && return
  echo "setup: vendoring $name $version with patches/$name/ into vendor/$name"
  tmp=$(mktemp -d)
  crate=$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/*/"$name-$version.crate" 2>/dev/null | head -n1 || true)
  if [[ -z $crate ]] || ! echo "$sha256  $crate" | sha256sum -c --quiet 2>/dev/null; then
    crate=$tmp/$name.crate
    curl -sSfL --retry 3 -o "$crate" "https://static.crates.io/crates/$name/$name-$version.crate"
    echo "$sha256  $crate" | sha256sum -c --quiet ||
      { echo "setup: error: $name-$version.crate from crates.io does not have the sha256 pinned in scripts/setup.sh" >&2; exit 1; }
  fi
  tar -xzf "$crate" -C "$tmp"
  for p in "$root/patches/$name"/*.patch; do
    patch -s -p1 -d "$tmp/$name-$version" <"$p" ||
      { echo "setup: error: $p does not apply to $name $version" >&2; exit 1; }
  done
  echo "$key" >"$tmp/$name-$version/.lamp-vendored"
  rm -rf "$dest"
  mkdir -p "$root/vendor"
  mv "$tmp/$name-$version" "$dest"
  rm -rf "$tmp"
}
vendor_crate wasmtime 48.0.8 a2afcadb2e7d0417cb8f3f322c66eff49338b288f22290c0ca0bd3e9570732aa
vendor_crate wasmtime-wasi 48.0.8 a678afa77874a2d6eed071852f7777ccd77495e0bfbc30f7b8089e1d00b2485f
vendor_crate wasmtime-internal-cranelift 48.0.8 478c09af53c545d96227b349d35c70fc78e99816923f41428ffff00974bcd145
