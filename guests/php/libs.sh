# The C libraries PHP's extensions link, built for wasm32-wasip2 with build.sh's compiler
# wrapper. Sourced by build.sh (its functions and variables: log, die, private_apt,
# debian_mirror, LAMP_CACHE, BUILD, JOBS, LLVM_BIN, WASI_LIBC_SHA256, hash_files).
#
# Each library comes from its Debian source package's release tarball, pinned by sha256 and
# kept in $LAMP_CACHE/src (mirrors drop superseded versions), and is installed into
# $LAMP_CACHE/wasm-libs/NAME-KEY, where KEY hashes what decides its bytes: the tarball, its
# recipe below (the function's text), the C library and the compiler. An unchanged library is
# never rebuilt, on this machine or in a fresh clone; a changed recipe rebuilds that library
# only. build.sh points pkg-config at the installed .pc files.

# name -> "source-package version suite tarball sha256" (sha256 from the .dsc's Checksums-Sha256)
declare -A LIB_SOURCE=(
  [zlib]="zlib 1:1.2.13.dfsg-1 bookworm zlib_1.2.13.dfsg.orig.tar.bz2 71feb7947e3c00ef125f83b79a4e529bde31171e5babe48b391f06758d1ab0a1"
  [sqlite3]="sqlite3 3.40.1-2+deb12u2 bookworm sqlite3_3.40.1.orig.tar.xz aaa776260ab4dc976db34aa7891819484c8676b5b2783123ebc6301e2ca5d655"
  [openssl]="openssl 3.0.20-1~deb12u2 bookworm openssl_3.0.20.orig.tar.gz c80a01dfc70ece4dc21168932c37739042d404d46ccc81a5986dd75314ecda6f"
  [libxml2]="libxml2 2.9.14+dfsg-1.3~deb12u6 bookworm libxml2_2.9.14+dfsg.orig.tar.xz 4fe913dec8b1ab89d13b489b419a8203176ea39e931eaa0d25b17eafb9c279e9"
  [libsodium]="libsodium 1.0.18-1+deb12u1 bookworm libsodium_1.0.18.orig.tar.gz d59323c6b712a1519a5daf710b68f5e7fde57040845ffec53850911f10a5d4f4"
  [libzip]="libzip 1.7.3-1 bookworm libzip_1.7.3.orig.tar.xz a60473ffdb7b4260c08bfa19c2ccea0438edac11193c3afbbb1f17fbcf6c6132"
  [libpng]="libpng1.6 1.6.39-2+deb12u5 bookworm libpng1.6_1.6.39.orig.tar.gz a00e9d2f2f664186e4202db9299397f851aea71b36a35e74910b8820e380d441"
  [libjpeg]="libjpeg-turbo 1:2.1.5-2 bookworm libjpeg-turbo_2.1.5.orig.tar.gz 254f3642b04e309fee775123133c6464181addc150499561020312ec61c1bf7c"
  [libwebp]="libwebp 1.2.4-0.2+deb12u1 bookworm libwebp_1.2.4.orig.tar.gz 7bf5a8a28cc69bcfa8cb214f2c3095703c6b73ac5fba4d5480c205331d9494df"
  [freetype]="freetype 2.12.1+dfsg-5+deb12u4 bookworm freetype_2.12.1+dfsg.orig.tar.xz 7dedb6b9adf331559daea614a83b8de42a753e685ec8e1c4bdb4529eb880b0d1"
  [curl]="curl 7.88.1-10+deb12u15 bookworm curl_7.88.1.orig.tar.gz cdb38b72e36bc5d33d5b8810f8018ece1baa29a8f215b4495e495ded82bbf3c7"
  # musl's iconv (trixie's musl is 1.2.5, wasi-libc's base): see lib_build_iconv.
  [iconv]="musl 1.2.5-3.1~deb13u1 trixie musl_1.2.5.orig.tar.gz a9a118bbe84d8764da0ea0d28b3ab3fae8477fc7e4085d90102b8596fc7c75e4"
)
WASM_LIBS=(iconv zlib sqlite3 openssl libxml2 libsodium libzip libpng libjpeg libwebp freetype curl)
# Debian's own patches of a package that are applied on top of the tarball (security and bug
# fixes; the packaging ones are left out), by name in debian/patches/.
declare -A LIB_DEBIAN_PATCHES=(
  [sqlite3]="41-fix_a_bug_in_the_NOT_NULL-IS_NULL_optimization.patch 42-CVE-2025-6965.patch 0001-Fix-a-buffer-overread-in-the-sessions-extension-that.patch 0002-Avoid-a-stack-overflow-that-could-be-caused-by-a-rec.patch 0003-Fix-a-technically-undefined-signed-integer-overflow-.patch"
  [libsodium]="CVE-2025-69277.patch"
  [iconv]="CVE-2025-26519-0001_iconv_fix_erroneous_input_validation_in_EUC_KR_decod.patch CVE-2025-26519-0002_iconv_harden_UTF_8_output_code_path_against_input_de.patch 0001-fix-pathological-slowness-incorrect-mappings-in-icon.patch"
  [libxml2]="series"
  [libpng]="series"
  [libjpeg]="1001-use-utc-timestamp.patch"
  [libwebp]="series"
  [freetype]="series"
  [curl]="series"
)
# For a package whose list above is "series": the patches of debian/patches/series that are
# left out (packaging, Python bindings, tests, demos and documentation; FreeType's extra
# validator modules and subpixel rendering, which Debian turns on and upstream leaves off), so
# that a new Debian security fix is applied by bumping the version alone.
declare -A LIB_DEBIAN_SERIES_EXCEPT=(
  [libxml2]="install-html.patch xml2-config-fix.patch python3-unicode-errors.patch 0034-testcatalog-Add-new-tests-for-catalog.c.patch"
  [libpng]="libpng-config.patch"
  [freetype]="enable-gxvalid-otvalid.patch enable-subpixel-rendering.patch no-web-fonts.patch hide-donations-information.patch hardening.patch CVE-2022-31782.patch"
  [curl]="04_workaround_as_needed_bug.patch 08_enable-zsh.patch build-Divide-mit-krb5-gssapi-link-flags-between-LDFLAGS-a.patch 11_omit-directories-from-config.patch Remove-curl-s-LDFLAGS-from-curl-config-static-libs.patch Use-correct-path-when-loading-libnss-pem-ckbi-.so.patch large-time-testable-feature.patch dont-stop-stunnel-before-retry.patch Use-OpenLDAP-specific-functionality.patch runtests.pl-Increase-variance-of-random-seed-used-for-tes.patch 90_gnutls.patch 99_nss.patch"
)
# The libraries each one is built against: found through their prefixes only (pkg-config's
# PKG_CONFIG_LIBDIR, CMake's CMAKE_FIND_ROOT_PATH), and their keys are part of its key, so a
# library is rebuilt when one it links changes.
declare -A LIB_DEPS=(
  [libzip]="zlib openssl"
  [libpng]="zlib"
  [freetype]="zlib libpng"
  [curl]="zlib openssl"
)

# The tarball (and, for packages with patches we apply, the Debian part) of library $1, from the
# cache or the Debian mirror; prints the tarball's path.
fetch_lib_source() {
  local name=$1 pkg version suite tarball sha dir
  read -r pkg version suite tarball sha <<<"${LIB_SOURCE[$name]}"
  dir=$LAMP_CACHE/src/$pkg
  if [[ -f $dir/$tarball ]] && echo "$sha  $dir/$tarball" | sha256sum -c --quiet 2>/dev/null; then
    echo "$dir/$tarball"; return
  fi
  log "downloading $tarball from Debian's $pkg source package ($version, $suite)"
  mkdir -p "$dir"
  private_apt "src-$suite" "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $(debian_mirror) $suite main"
  (cd "$dir" && apt-get "${APT_OPTS[@]}" -qq source --download-only "$pkg=$version" >&2) ||
    die "apt-get source $pkg=$version failed: the mirror may have dropped it; put $tarball (sha256 $sha) in $dir"
  echo "$sha  $dir/$tarball" | sha256sum -c --quiet || die "$dir/$tarball: sha256 mismatch (want $sha)"
  echo "$dir/$tarball"
}

# What decides a library's bytes besides its recipe: the C library, the compiler, the compat
# header every compile includes.
lib_toolchain_key() {
  { echo "$WASI_LIBC_SHA256"; clang-22 --version | head -1; hash_files compat; } | sha256sum | cut -c1-16
}

lib_key() { # name
  local name=$1
  { echo "${LIB_SOURCE[$name]} ${LIB_DEBIAN_PATCHES[$name]:-}${LIB_DEBIAN_SERIES_EXCEPT[$name]:+ ${LIB_DEBIAN_SERIES_EXCEPT[$name]}}"; declare -f "lib_build_$name" lib_cflags write_pc;
    [[ -d $HERE/libs/$name ]] && hash_files "libs/$name"; lib_toolchain_key;
    # the helpers its recipe calls (lib_cmake, lib_pc_static), and the libraries it links
    local helper dep
    for helper in $(declare -f "lib_build_$name" | grep -o '\blib_[a-z0-9_]*' | sort -u | grep -vx -e "lib_build_$name" -e lib_cflags); do
      declare -F "$helper" >/dev/null && declare -f "$helper"
    done
    for dep in ${LIB_DEPS[$name]:-}; do echo "$dep $(lib_key "$dep")"; done; } | sha256sum | cut -c1-16
}

# Unpacks library $1 into $BUILD/libs/$1 (fresh) and applies the Debian patches listed for it.
unpack_lib() {
  local name=$1 tarball pkg dir=$BUILD/libs/$1 debian
  tarball=$(fetch_lib_source "$name")
  rm -rf "$dir" && mkdir -p "$dir"
  tar -xf "$tarball" -C "$dir" --strip-components=1
  if [[ -n ${LIB_DEBIAN_PATCHES[$name]:-} ]]; then
    pkg=${LIB_SOURCE[$name]%% *}
    debian=$(compgen -G "$(dirname "$tarball")/${pkg}_*.debian.tar.xz" | head -1)
    [[ -f $debian ]] || die "$name: the Debian part of the source package is missing next to $tarball"
    tar -xJf "$debian" -C "$dir"
    local list=${LIB_DEBIAN_PATCHES[$name]}
    if [[ $list == series ]]; then
      list=$(grep -v '^#' "$dir/debian/patches/series" | grep -vxF -f <(tr ' ' '\n' <<<"${LIB_DEBIAN_SERIES_EXCEPT[$name]:-}"))
    fi
    for p in $list; do
      patch -s -p1 -d "$dir" <"$dir/debian/patches/$p" || die "$name: Debian patch $p does not apply"
    done
  fi
  # Ours, for WASI (libs/NAME/*.patch, in name order).
  local ours
  for ours in "$HERE/libs/$name"/*.patch; do
    [[ -f $ours ]] || continue
    patch -s -p1 -d "$dir" <"$ours" || die "$name: $(basename "$ours") does not apply"
  done
  echo "$dir"
}

# The flags every library is compiled with: -O2, or a recipe's LIB_OPT (-Oz for gd's libraries,
# libzip and curl, -Os for SQLite and libxml2: below; the layers' 16 MB budget). The wrapper adds target, sysroot and compat, and maps the source
# folder to /src/NAME (LAMP_PREFIX_MAP, set by build_libs: a flag given here would be recorded
# by OpenSSL, and with it the build's path).
lib_cflags() { # name src   (env LIB_OPT)
  echo "${LIB_OPT:--O2}"
}

lib_build_zlib() { # src prefix
  local src=$1 prefix=$2
  (cd "$src" &&
    CC=wasi-cc CFLAGS="$(lib_cflags zlib "$src")" AR="$LLVM_BIN/llvm-ar" RANLIB="$LLVM_BIN/llvm-ranlib" \
      CHOST=wasm32 ./configure --static --prefix="$prefix" &&
    make -j"$JOBS" libz.a && make install) >"$src/build.log" 2>&1 || die "zlib: build failed (log: $src/build.log)"
}

# SQLite: the amalgamation is generated by the native toolchain (tclsh, a C compiler for its
# generators), then compiled once for wasm. No threads, no WAL (its shared memory needs a real
# mmap); file locking by lock directories (see libs/sqlite3/). Loading extensions is compiled
# in, so that PHP has `SQLite3::loadExtension()` as natively, but no library ever loads: WASI
# has no dlopen (wasi-libc's says "dlopen not implemented"), so PHP's warning says why.
lib_build_sqlite3() { # src prefix
  local src=$1 prefix=$2
  (cd "$src" && CC=gcc ./configure --disable-tcl --disable-threadsafe >configure-native.log 2>&1 &&
    make sqlite3.c >make-amalgamation.log 2>&1) || die "sqlite3: generating the amalgamation failed (needs tclsh: scripts/setup.sh); logs in $src"
  local defs=(
    # Debian's choices (debian/rules) that make sense here
    -DSQLITE_SECURE_DELETE -DSQLITE_ENABLE_COLUMN_METADATA -DSQLITE_ENABLE_FTS3
    -DSQLITE_ENABLE_FTS3_PARENTHESIS -DSQLITE_ENABLE_RTREE=1 -DSQLITE_SOUNDEX=1
    -DSQLITE_ENABLE_DBSTAT_VTAB -DSQLITE_ENABLE_UPDATE_DELETE_LIMIT=1 -DSQLITE_ENABLE_JSON1
    -DSQLITE_LIKE_DOESNT_MATCH_BLOBS -DSQLITE_ENABLE_FTS3_TOKENIZER=1 -DSQLITE_USE_URI=1
    -DSQLITE_MAX_SCHEMA_RETRY=25 -DSQLITE_ENABLE_COLUMN_METADATA -DSQLITE_MAX_VARIABLE_NUMBER=250000
    # WASI
    -DSQLITE_THREADSAFE=0 -DSQLITE_OMIT_WAL -DSQLITE_MAX_MMAP_SIZE=0
    -DHAVE_USLEEP=1 -DHAVE_LOCALTIME_R=1 -DHAVE_GMTIME_R=1 -DHAVE_FDATASYNC=1
    -DSQLITE_DEFAULT_UNIX_VFS='"unix-dotfile"' -DSQLITE_EXTRA_INIT=lamp_sqlite_init
    # fcntl.h has struct flock but not its constants; the "unix" VFS that uses them is still
    # there, and fails with an I/O error, as the libc's fcntl refuses locks.
    -DF_GETLK=5 -DF_SETLK=6 -DF_SETLKW=7 -DF_RDLCK=0 -DF_WRLCK=1 -DF_UNLCK=2
  )
  mkdir -p "$prefix/lib/pkgconfig" "$prefix/include"
  # shellcheck disable=SC2046 # the flags are words
  # -Os, as SQLite's own size-conscious builds: with curl the layers were 0.2 MB over budget.
  { wasi-cc $(LIB_OPT=-Os lib_cflags sqlite3 "$src") "${defs[@]}" -c "$src/sqlite3.c" -o "$src/sqlite3.o" &&
    wasi-cc $(lib_cflags sqlite3 "$HERE/libs/sqlite3") -I"$src" -c "$HERE/libs/sqlite3/lamp_sqlite_init.c" -o "$src/lamp_sqlite_init.o" &&
    "$LLVM_BIN/llvm-ar" rcs "$prefix/lib/libsqlite3.a" "$src/sqlite3.o" "$src/lamp_sqlite_init.o" &&
    cp "$src/sqlite3.h" "$src/sqlite3ext.h" "$prefix/include/"; } || die "sqlite3: compiling for wasm failed"
  local version
  version=$(cat "$src/VERSION")
  write_pc "$prefix" sqlite3 SQLite "$version" -lsqlite3
}

# OpenSSL 3.0: libcrypto and libssl only (no apps, engines, modules, threads or assembly). The
# install prefix and OPENSSLDIR are fixed strings, not the cache path, so the bytes do not
# depend on where the cache is.
lib_build_openssl() { # src prefix
  local src=$1 prefix=$2
  # Its "built on:" date (OpenSSL_version(OPENSSL_BUILT_ON)): the release's, not the build's.
  (cd "$src" && export SOURCE_DATE_EPOCH="$(stat -c %Y NEWS.md)" && ./Configure linux-generic32 no-asm no-threads no-dso no-shared no-afalgeng \
      no-async no-engine no-ui-console no-tests no-secure-memory no-module \
      --prefix=/usr --openssldir=/etc/ssl --libdir=lib $(lib_cflags openssl "$src") \
      CC=wasi-cc AR="$LLVM_BIN/llvm-ar" RANLIB="$LLVM_BIN/llvm-ranlib" >configure.log 2>&1 &&
    nice make -j"$JOBS" build_generated >make.log 2>&1 &&
    nice make -j"$JOBS" libcrypto.a libssl.a >>make.log 2>&1) ||
    die "openssl: build failed (logs: $src/{configure,make}.log)"
  # Installed by hand: install_dev would build the command-line tools too (they need processes).
  mkdir -p "$prefix/lib/pkgconfig" "$prefix/include/openssl"
  cp "$src"/include/openssl/*.h "$prefix/include/openssl/"
  cp "$src/libcrypto.a" "$src/libssl.a" "$prefix/lib/"
  # (The .pc files' make targets would build the tools' library too.)
  local version
  version=$(sed -n 's/^# *define OPENSSL_VERSION_STR "\(.*\)"/\1/p' "$src/include/openssl/opensslv.h")
  write_pc "$prefix" libcrypto OpenSSL-libcrypto "$version" -lcrypto
  write_pc "$prefix" libssl OpenSSL-libssl "$version" -lssl libcrypto
  write_pc "$prefix" openssl OpenSSL "$version" "" "libssl libcrypto"
}

# libxml2 for ext/libxml, dom, simplexml, xml, xmlreader, xmlwriter: no threads, no network
# (PHP's stream wrappers fetch instead: its I/O callbacks), no compression, no modules;
# encodings beyond the built-in ones through the C library's iconv.
lib_build_libxml2() { # src prefix
  local src=$1 prefix=$2
  # Its config.sub predates the wasi system name: Debian's (autotools-dev, with automake) knows it.
  # -Os: the layers' budget (see SQLite's).
  (cd "$src" && cp /usr/share/misc/config.sub /usr/share/misc/config.guess . &&
    CC=wasi-cc CFLAGS="$(LIB_OPT=-Os lib_cflags libxml2 "$src")" AR="$LLVM_BIN/llvm-ar" RANLIB="$LLVM_BIN/llvm-ranlib" \
      ./configure --host=wasm32-unknown-wasi --build=x86_64-pc-linux-gnu --prefix="$prefix" \
      --disable-shared --enable-static --without-python --without-threads --without-thread-alloc \
      --without-http --without-ftp --without-lzma --without-zlib --without-modules --without-debug \
      --without-icu --with-iconv >configure.log 2>&1 &&
    nice make -j"$JOBS" libxml2.la >make.log 2>&1 &&
    make install-libLTLIBRARIES install-pkgconfigDATA >>make.log 2>&1 &&
    make -C include install >>make.log 2>&1) ||
    die "libxml2: build failed (logs: $src/{configure,make}.log)"
}

# iconv: wasi-libc's is musl's, which differs from glibc's (what PHP's ext/iconv and libxml2
# are written against) where it matters to applications: a character the target charset has
# not becomes '*' instead of an error (libxml2 then writes '*' where it writes "&#8364;" with
# glibc; iconv() of PHP returns the text instead of false), the suffixes //IGNORE and
# //TRANSLIT make iconv_open fail, and ISO-2022-JP output escapes each character on its own.
# Debian's musl source (with its iconv fixes, CVE-2025-26519 among them) with our patch
# (libs/iconv/) replaces the C library's two objects in build.sh's private sysroot
# (use_our_iconv), so that every link, PHP's and its libraries', gets it.
lib_build_iconv() { # src prefix
  local src=$1 prefix=$2 f
  mkdir -p "$prefix/lib"
  for f in iconv iconv_close; do
    # (-w: musl's tables are initialised without inner braces.)
    wasi-cc $(lib_cflags iconv "$src") -w -c "$src/src/locale/$f.c" -o "$prefix/lib/$f.c.obj" ||
      die "iconv: compiling $f.c failed"
  done
}

# The C library's iconv objects (of the same names) replaced by lib_build_iconv's, in the
# sysroot make_toolchain unpacked: idempotent.
use_our_iconv() {
  local libc=$BUILD/sysroot/lib/wasm32-wasip2/libc.a prefix
  prefix=$(lib_prefix iconv)
  "$LLVM_BIN/llvm-ar" d "$libc" iconv.c.obj iconv_close.c.obj &&
    "$LLVM_BIN/llvm-ar" r "$libc" "$prefix/lib/iconv.c.obj" "$prefix/lib/iconv_close.c.obj" ||
    die "replacing the C library's iconv in $libc failed"
}

# libsodium, from the git export Debian packages (no configure: autoreconf makes it, with
# Debian's autotools). Its random bytes come from wasi:random on every call (libs/libsodium/).
lib_build_libsodium() { # src prefix
  local src=$1 prefix=$2
  (cd "$src" && autoreconf -fi >autoreconf.log 2>&1 &&
    CC=wasi-cc CFLAGS="$(lib_cflags libsodium "$src")" AR="$LLVM_BIN/llvm-ar" RANLIB="$LLVM_BIN/llvm-ranlib" \
      ./configure --host=wasm32-unknown-wasi --build=x86_64-pc-linux-gnu --prefix="$prefix" \
      --disable-shared --enable-static --disable-ssp --without-pthreads --disable-asm >configure.log 2>&1 &&
    nice make -j"$JOBS" >make.log 2>&1 && make install >>make.log 2>&1) ||
    die "libsodium: build failed (logs: $src/{autoreconf,configure,make}.log)"
}

# CMake for wasm32-wasip2: a toolchain file naming the compiler wrapper, and a platform "WASI"
# (which CMake 3.25 does not know): Unix paths, static libraries only. Libraries this one links
# are found under their prefixes only (LIB_DEP_PREFIXES, set by build_libs), never the host's;
# an empty folder is always a root, so that "only under the roots" never means the host's.
lib_cmake() { # src prefix cmake-options...   (env LIB_OPT: see lib_cflags)
  local src=$1 prefix=$2 dir=$1/lamp-cmake
  shift 2
  mkdir -p "$dir/Platform" "$dir/no-root"
  cat >"$dir/Platform/WASI.cmake" <<'EOF'
set(UNIX 1)
set(WASI 1)
include(Platform/UnixPaths)
set_property(GLOBAL PROPERTY TARGET_SUPPORTS_SHARED_LIBS FALSE)
set(CMAKE_EXECUTABLE_SUFFIX .wasm)
set(CMAKE_STATIC_LIBRARY_PREFIX lib)
set(CMAKE_STATIC_LIBRARY_SUFFIX .a)
set(CMAKE_FIND_LIBRARY_PREFIXES lib)
set(CMAKE_FIND_LIBRARY_SUFFIXES .a)
EOF
  local roots="$dir/no-root" dep
  for dep in ${LIB_DEP_PREFIXES:-}; do roots+=";$dep"; done
  cat >"$dir/toolchain.cmake" <<EOF
set(CMAKE_SYSTEM_NAME WASI)
set(CMAKE_SYSTEM_PROCESSOR wasm32)
list(APPEND CMAKE_MODULE_PATH "$dir")
set(CMAKE_C_COMPILER "$BUILD/bin/wasi-cc")
set(CMAKE_AR "$LLVM_BIN/llvm-ar")
set(CMAKE_RANLIB "$LLVM_BIN/llvm-ranlib")
set(CMAKE_FIND_ROOT_PATH "$roots")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
EOF
  cmake -S "$src" -B "$src/build" -G "Unix Makefiles" -DCMAKE_TOOLCHAIN_FILE="$dir/toolchain.cmake" \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_FLAGS_RELEASE="$(lib_cflags cmake "$src") -DNDEBUG" \
    -DCMAKE_INSTALL_PREFIX="$prefix" -DCMAKE_INSTALL_LIBDIR:STRING=lib -DBUILD_SHARED_LIBS=OFF "$@" \
    >"$src/configure.log" 2>&1 &&
    nice cmake --build "$src/build" -j"$JOBS" >"$src/make.log" 2>&1 &&
    cmake --install "$src/build" >>"$src/make.log" 2>&1
}

# PHP's configure asks pkg-config without --static, and these libraries are static: what a
# library needs of others (Requires.private, Libs.private) moves into Requires and Libs, or
# PHP's link tests of it fail on the others' symbols.
lib_pc_static() { # .pc files...
  local pc
  for pc; do
    awk '/^Requires(\.private)?:/ { sub(/^[^:]*: */, ""); req = req " " $0; next }
         /^Libs(\.private)?:/ { sub(/^[^:]*: */, ""); libs = libs " " $0; next }
         { print }
         END { print "Requires:" req; print "Libs:" libs }' "$pc" >"$pc.tmp" && mv "$pc.tmp" "$pc"
  done
}

# libzip for ext/zip: deflate through our zlib, AES encryption (WinZip AES) and its random salt
# through our OpenSSL (RAND_bytes, seeded per instance: see libs/openssl/); no bzip2, no lzma,
# no tools.
lib_build_libzip() { # src prefix
  local src=$1 prefix=$2
  LIB_OPT=-Oz lib_cmake "$src" "$prefix" -DENABLE_OPENSSL=ON -DENABLE_GNUTLS=OFF -DENABLE_MBEDTLS=OFF \
    -DENABLE_COMMONCRYPTO=OFF -DENABLE_WINDOWS_CRYPTO=OFF -DENABLE_BZIP2=OFF -DENABLE_LZMA=OFF \
    -DBUILD_TOOLS=OFF -DBUILD_REGRESS=OFF -DBUILD_EXAMPLES=OFF -DBUILD_DOC=OFF ||
    die "libzip: build failed (logs: $src/{configure,make}.log)"
  # Its own .pc names the others by -l only (and libssl, which it does not use): by their
  # .pc files instead, which carry their folders.
  write_pc "$prefix" libzip libzip "$(sed -n 's/^Version: //p' "$prefix/lib/pkgconfig/libzip.pc")" -lzip "zlib libcrypto"
}

# gd's four libraries (libpng, libjpeg-turbo, libwebp, FreeType), libzip and curl are compiled
# with -Oz (LIB_OPT), not -O2, and so is libgd (build.sh): at -O2 gd's and libzip made php.zip
# 1.67 MB larger, over the layers' 16 MB budget (guests/php/README.md, Extensions: what each
# costs).

# libpng for gd (PNG is required by PHP's bundled libgd), against our zlib; no SIMD, no tools.
lib_build_libpng() { # src prefix
  local src=$1 prefix=$2
  (cd "$src" && cp /usr/share/misc/config.sub /usr/share/misc/config.guess . &&
    CC=wasi-cc CFLAGS="$(LIB_OPT=-Oz lib_cflags libpng "$src")" AR="$LLVM_BIN/llvm-ar" \
      RANLIB="$LLVM_BIN/llvm-ranlib" CPPFLAGS="$(pkg-config --cflags zlib)" \
      LDFLAGS="$(pkg-config --libs-only-L zlib)" \
      ./configure --host=wasm32-unknown-wasi --build=x86_64-pc-linux-gnu --prefix="$prefix" \
      --disable-shared --enable-static --enable-hardware-optimizations=no --disable-tools \
      >configure.log 2>&1 &&
    nice make -j"$JOBS" libpng16.la >make.log 2>&1 &&
    make install-libLTLIBRARIES install-pkgincludeHEADERS install-nodist_pkgincludeHEADERS \
      install-pkgconfigDATA install-header-links install-libpng-pc >>make.log 2>&1) ||
    die "libpng: build failed (logs: $src/{configure,make}.log)"
  lib_pc_static "$prefix/lib/pkgconfig/libpng16.pc"
}

# libjpeg-turbo for gd: the libjpeg API only (no TurboJPEG API, no SIMD: wasm has no assembly of
# its own here), no arithmetic coding (a rare variant gd never writes), nothing gd does not use
# (libs/libjpeg/). Its version string carries a build date: the release's (SOURCE_DATE_EPOCH, in
# UTC by Debian's patch), not the build's.
lib_build_libjpeg() { # src prefix
  local src=$1 prefix=$2
  SOURCE_DATE_EPOCH=$(stat -c %Y "$src/ChangeLog.md") LIB_OPT=-Oz \
    lib_cmake "$src" "$prefix" -DENABLE_SHARED=OFF -DENABLE_STATIC=ON -DWITH_SIMD=OFF \
    -DWITH_TURBOJPEG=OFF -DWITH_JAVA=OFF -DWITH_FUZZ=OFF -DWITH_ARITH_ENC=OFF -DWITH_ARITH_DEC=OFF ||
    die "libjpeg: build failed (logs: $src/{configure,make}.log)"
}

# libwebp for gd: the codec only (no tools, no mux/demux libraries gd does not use), no
# threads, no SIMD; WEBP_REDUCE_SIZE leaves out what gd does not call (scaled and cropped
# decoding, the encoder's quality statistics and filter-strength search).
lib_build_libwebp() { # src prefix
  local src=$1 prefix=$2
  LIB_OPT="-Oz -DWEBP_REDUCE_SIZE" lib_cmake "$src" "$prefix" -DWEBP_ENABLE_SIMD=OFF -DWEBP_USE_THREAD=OFF \
    -DWEBP_BUILD_ANIM_UTILS=OFF -DWEBP_BUILD_CWEBP=OFF -DWEBP_BUILD_DWEBP=OFF \
    -DWEBP_BUILD_GIF2WEBP=OFF -DWEBP_BUILD_IMG2WEBP=OFF -DWEBP_BUILD_VWEBP=OFF \
    -DWEBP_BUILD_WEBPINFO=OFF -DWEBP_BUILD_LIBWEBPMUX=OFF -DWEBP_BUILD_WEBPMUX=OFF \
    -DWEBP_BUILD_EXTRAS=OFF ||
    die "libwebp: build failed (logs: $src/{configure,make}.log)"
}

# FreeType for gd's text (imagettftext, imagefttext): TrueType fonts and OpenType's CFF outlines
# only (libs/freetype/), PNG
# glyphs (colour emoji) through our libpng, WOFF through our zlib; no HarfBuzz, Brotli (WOFF2)
# or bzip2.
lib_build_freetype() { # src prefix
  local src=$1 prefix=$2
  LIB_OPT=-Oz lib_cmake "$src" "$prefix" -DFT_REQUIRE_ZLIB=ON -DFT_REQUIRE_PNG=ON -DFT_DISABLE_HARFBUZZ=ON \
    -DFT_DISABLE_BROTLI=ON -DFT_DISABLE_BZIP2=ON ||
    die "freetype: build failed (logs: $src/{configure,make}.log)"
  lib_pc_static "$prefix/lib/pkgconfig/freetype2.pc"
}

# libcurl for ext/curl: HTTP, HTTPS (our OpenSSL; its CA bundle is the one PHP's OpenSSL uses,
# /etc/ssl/cert.pem, where the host shows PHP guests dist/ssl/) and FILE, gzip and deflate
# through our zlib. The other protocols are left out for size (FTP's active mode would need a
# listening socket, TFTP UDP, both refused by the sandbox). Connections through the libc's
# sockets, so wasi:sockets and the host's outbound policy, as PHP's streams. Names resolve with
# the libc's getaddrinfo (through the host's policy), synchronously (no threads for curl's
# threaded resolver), "localhost" too (libs/curl/); no socketpair (curl_multi_wakeup is then
# unavailable), no Unix sockets, no HTTP/2 (nghttp2), IDN or PSL.
lib_build_curl() { # src prefix
  local src=$1 prefix=$2 zlib openssl
  read -r zlib openssl <<<"${LIB_DEP_PREFIXES:-}"
  # curl's configure adds -O2 unless CFLAGS has an optimisation it knows, and for clang -Oz is
  # not one of them: -Os first keeps it from adding any, and the -Oz after it wins.
  (cd "$src" && cp /usr/share/misc/config.sub /usr/share/misc/config.guess . &&
    CC=wasi-cc CFLAGS="-Os $(LIB_OPT=-Oz lib_cflags curl "$src")" AR="$LLVM_BIN/llvm-ar" \
      RANLIB="$LLVM_BIN/llvm-ranlib" ./configure --host=wasm32-unknown-wasi \
      --build=x86_64-pc-linux-gnu --prefix="$prefix" \
      --disable-shared --enable-static --with-openssl="$openssl" --with-zlib="$zlib" \
      --with-ca-bundle=/etc/ssl/cert.pem --without-ca-path --without-ca-fallback \
      --disable-threaded-resolver --disable-pthreads --disable-ares --disable-socketpair \
      --disable-unix-sockets --disable-ntlm-wb --disable-tls-srp --disable-manual --disable-docs \
      --disable-ftp --disable-ldap --disable-ldaps --disable-rtsp --disable-dict --disable-telnet \
      --disable-tftp --disable-pop3 --disable-imap --disable-smb --disable-smtp --disable-gopher \
      --disable-mqtt --without-libpsl --without-brotli --without-zstd --without-nghttp2 \
      --without-libidn2 --without-librtmp --without-libssh2 --without-libssh --without-hyper \
      --without-ngtcp2 --without-nghttp3 --without-quiche --without-msh3 --without-libgsasl \
      --without-zsh-functions-dir --without-fish-functions-dir >configure.log 2>&1 &&
    nice make -j"$JOBS" -C lib libcurl.la >make.log 2>&1 &&
    { make -C lib install-libLTLIBRARIES && make -C include install &&
      make install-pkgconfigDATA; } >>make.log 2>&1) ||
    die "curl: build failed (logs: $src/{configure,make}.log)"
  # Its .pc names OpenSSL and zlib by -l only: by their .pc files instead, which carry their
  # folders (PHP's configure checks curl before openssl and zlib). PHP reads supported_features.
  local pc=$prefix/lib/pkgconfig/libcurl.pc features
  features=$(grep '^supported_' "$pc")
  write_pc "$prefix" libcurl libcurl "$(sed -n 's/^Version: //p' "$pc")" -lcurl "libssl libcrypto zlib"
  printf '%s\n' "$features" >>"$pc"
}

# A pkg-config file for static libraries in a prefix: prefix name title version libs [requires]
write_pc() {
  cat >"$1/lib/pkgconfig/$2.pc" <<EOF
prefix=$1
libdir=\${prefix}/lib
includedir=\${prefix}/include
Name: $3
Description: $3 for wasm32-wasip2 (wasm-lamp)
Version: $4
Requires: ${6:-}
Libs: -L\${libdir} $5
Cflags: -I\${includedir}
EOF
}

# Where library $1 is (or will be) installed.
lib_prefix() {
  echo "$LAMP_CACHE/wasm-libs/$1-$(lib_key "$1")"
}

# Builds library $1 into $2, its cache folder (in a subshell of build_libs: `die` ends it).
build_lib() { # name prefix
  local name=$1 prefix=$2 src dep deps=() pcdirs=() t=$SECONDS
  log "building $name for wasm32-wasip2 (inputs $(lib_key "$name"))"
  src=$(unpack_lib "$name")
  rm -rf "$prefix" && mkdir -p "$prefix"
  # What it links (LIB_DEPS), and nothing of the host's.
  for dep in ${LIB_DEPS[$name]:-}; do
    deps+=("$(lib_prefix "$dep")")
    pcdirs+=("${deps[-1]}/lib/pkgconfig")
  done
  ((${#pcdirs[@]})) || pcdirs=("$BUILD/libs/no-pkgconfig")
  LAMP_PREFIX_MAP="$src=/src/$name" LIB_DEP_PREFIXES="${deps[*]}" \
    PKG_CONFIG_LIBDIR=$(IFS=:; echo "${pcdirs[*]}") PKG_CONFIG_PATH= \
    "lib_build_$name" "$src" "$prefix" || die "$name: build failed"
  touch "$prefix/.done"
  log "$name built in $((SECONDS - t)) s: $prefix"
  rm -rf "$src"
}

# Stops process $1 and everything it started (a library's build: its make, the compilers).
kill_tree() { # pid
  local child
  for child in $(pgrep -P "$1"); do kill_tree "$child"; done
  kill "$1" 2>/dev/null || true
}

# The libraries started first when missing, the longest (OpenSSL: ~11 of the ~24 minutes the
# twelve take one after another on two cores), so that the others, whose configure scripts run
# on one core, fill the other core beside them; then the rest in WASM_LIBS's order.
LIB_FIRST=(openssl libsodium libxml2)

# Builds (or finds in the cache) every library; sets LIBS_PKG_CONFIG_LIBDIR to their .pc dirs.
# Missing libraries are built LAMP_LIB_JOBS at a time (default 2), each as soon as the ones it
# links are; a failure stops the others and names the library and its logs.
build_libs() {
  local name dep ready missing=() dirs=() pid failed=
  local -A building=() prefix=()
  for name in "${WASM_LIBS[@]}"; do
    prefix[$name]=$(lib_prefix "$name")
    if [[ -f ${prefix[$name]}/.done ]]; then log "$name up to date: ${prefix[$name]}"; fi
  done
  for name in "${LIB_FIRST[@]}" "${WASM_LIBS[@]}"; do
    [[ -f ${prefix[$name]}/.done || " ${missing[*]} " == *" $name "* ]] || missing+=("$name")
  done
  # Sources first, one at a time (apt-get source shares its private state between calls).
  for name in "${missing[@]}"; do fetch_lib_source "$name" >/dev/null; done
  while ((${#missing[@]} || ${#building[@]})); do
    local waiting=()
    for name in "${missing[@]}"; do
      ready=1
      for dep in ${LIB_DEPS[$name]:-}; do
        [[ -f ${prefix[$dep]}/.done ]] || ready=0
      done
      if ((ready && ${#building[@]} < ${LAMP_LIB_JOBS:-2})); then
        build_lib "$name" "${prefix[$name]}" &
        building[$!]=$name
      else
        waiting+=("$name")
      fi
    done
    missing=("${waiting[@]}")
    ((${#building[@]})) || die "libraries that wait for each other: ${missing[*]} (see LIB_DEPS)"
    # Polled: bash's `wait -n` misses a job that ended before it was called.
    local ended=
    while [[ -z $ended ]]; do
      for pid in "${!building[@]}"; do
        kill -0 "$pid" 2>/dev/null && continue
        ended=1
        wait "$pid" || failed=${building[$pid]}
        unset "building[$pid]"
      done
      [[ -n $ended ]] || sleep 1
    done
    if [[ -n $failed ]]; then
      for pid in "${!building[@]}"; do kill_tree "$pid"; done
      wait "${!building[@]}" 2>/dev/null || true
      die "$failed: build failed (its log is above)"
    fi
  done
  for name in "${WASM_LIBS[@]}"; do dirs+=("${prefix[$name]}/lib/pkgconfig"); done
  LIBS_PKG_CONFIG_LIBDIR=$(IFS=:; echo "${dirs[*]}")
  use_our_iconv
}
