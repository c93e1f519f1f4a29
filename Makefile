# wasm-lamp — the commands a newcomer types. Every target installs what it needs first
# (scripts/setup.sh is idempotent and quick when all is there).

CARGO ?= cargo
HOST_DEBUG := target/debug/host
PHP_RUNTIME := guests/php/dist/php.wasm

.PHONY: setup demo demo-rust php host check test phpt layers bootstraps bench clean-php serve

setup:
	@bash scripts/setup.sh

# The PHP build's tool (guests/php/build.sh) is built in the same cargo run as the host, so
# that wasmtime, the longest part of a first build, is compiled once for both.
host: setup
	$(CARGO) build -p host -p lamp-php-tool

php: setup
	bash guests/php/build.sh

# The seed's example: the PHP handler src/index.php on {"name":"world"}; then where the time
# went (setup, builds, the run).
demo:
	@CARGO="$(CARGO)" bash scripts/demo.sh

# The same seed example as a Rust handler component.
demo-rust: setup
	$(CARGO) build -p host -p test-artifacts
	$(HOST_DEBUG) run target/guests/wasm32-wasip2/release/hello_rust.wasm --event '{"name":"world"}'
	@echo

# The tests that need no layer zips (everything but tests/it/layers.rs): the quick loop.
check: setup php
	$(CARGO) test --workspace -- --skip layers::

# Everything CI runs. The layer tests (tests/it/layers.rs) unpack the zips `make layers` writes
# (static builds of the host for both architectures); without dist/ they fail, saying so.
# PHP's own tests run beside a private MariaDB (tests/mariadb's with-mariadb) for the mysqli
# and pdo_mysql suites; ours only (`make phpt` also runs native php8.2 on them, per suite side
# by side: ~5 more minutes).
# PHP's build and the bootstraps' are started side by side: both are long from scratch, and
# neither keeps two cores busy all the time (configure scripts, the bootstraps' LTO links).
test: setup
	@$(MAKE) --no-print-directory -j2 php bootstraps
	@$(MAKE) --no-print-directory layers
	$(CARGO) test --workspace
	LAMP_PHPT_NATIVE=0 $(PHPT)
	$(CARGO) run -q -p lamp-bench -- --quick --host $(HOST_DEBUG)

PHPT = $(CARGO) run -q -p test-mariadb --bin with-mariadb -- bash guests/php/run-phpt.sh
phpt: setup php
	$(PHPT)

# The Lambda layers and example functions, for x86_64 and arm64, as deterministic zips in dist/
# (layer/README.md). The full host compiles the other architecture's php.cwasm; it is built
# with PHP's tool, as build.sh builds it: the same packages, so the same features of wasmtime
# (which `cargo test --workspace` also gets), never a wasmtime build of its own.
# The bootstraps' embedded paths (panic locations) are remapped so that any checkout, wherever
# it and cargo's registry are, builds byte-identical zips; both targets in one cargo run share
# its build scripts. The bootstraps are static executables at a fixed address, not static-pie:
# no ~25,000 relocations to apply and 110 fewer page faults at each cold start (~0.2 ms;
# layer/README.md says what it trades).
LAYER_RUSTFLAGS := --remap-path-prefix=$(CURDIR)=/lamp --remap-path-prefix=$(or $(CARGO_HOME),$(HOME)/.cargo)=/cargo -C relocation-model=static
# mimalloc's C code records when it was compiled (`__DATE__`, `__TIME__`: "built on ..."); GCC
# takes both from SOURCE_DATE_EPOCH when it is set: here the zips' own date, 1980-01-01.
LAYER_DATE := 315532800
LAYER_TARGETS := --target x86_64-unknown-linux-musl --target aarch64-unknown-linux-musl
layers: setup php bootstraps
	$(CARGO) build -p host -p lamp-php-tool
	$(CARGO) build -p test-artifacts
	$(CARGO) run --release -p lamp-layer -- --out dist

# The layers' bootstraps alone: static builds of the host for both architectures.
bootstraps: setup
	SOURCE_DATE_EPOCH=$(LAYER_DATE) RUSTFLAGS="$(LAYER_RUSTFLAGS)" $(CARGO) build --profile layer $(LAYER_TARGETS) -p host --no-default-features

clean-php:
	rm -rf guests/php/dist target/php

# Our runtime against native PHP (see BENCHMARKS.md); BENCH_FLAGS=--quick for a smoke run.
bench: setup php
	$(CARGO) build --release -p host -p lamp-bench -p test-artifacts
	target/release/lamp-bench --host target/release/host $(BENCH_FLAGS)

# The example web app (examples/lamp-app) on http://127.0.0.1:8080, as nginx + PHP-FPM would
# serve it: each request in a fresh instance, /assets/ as static files, /rust/* by its Rust
# wasi:http component (built with the other guests, copied where the template expects it).
serve: host php
	$(CARGO) build -p test-artifacts
	cp target/guests/wasm32-wasip2/release/lamp_app_rust.wasm examples/lamp-app/rust/hello.wasm
	$(HOST_DEBUG) serve examples/lamp-app/template.yaml --listen 127.0.0.1:8080
