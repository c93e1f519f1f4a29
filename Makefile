# wasm-lamp — the commands a newcomer types. Every target installs what it needs first
# (scripts/setup.sh is idempotent and quick when all is there).

CARGO ?= cargo
HOST_DEBUG := target/debug/host
PHP_RUNTIME := guests/php/dist/php.wasm

.PHONY: setup demo demo-rust php host test test-all layers bench clean-php

setup:
	@bash scripts/setup.sh

host: setup
	$(CARGO) build -p host

php: setup
	bash guests/php/build.sh

# The seed's example: the PHP handler src/index.php on {"name":"world"}.
demo: host php
	$(HOST_DEBUG) run examples/hello-php/src/index.php --event '{"name":"world"}'
	@echo

# The same seed example as a Rust handler component.
demo-rust: setup
	$(CARGO) build -p host -p test-artifacts
	$(HOST_DEBUG) run target/guests/wasm32-wasip2/release/hello_rust.wasm --event '{"name":"world"}'
	@echo

# Layer tests (tests/it/layers.rs) need `make layers` first; without dist/ they print SKIPPED.
# `make test-all` runs them for real (a static release build of the host: slow on 2 cores).
test: setup php
	$(CARGO) test --workspace
	bash guests/php/run-phpt.sh
	$(CARGO) run -q -p lamp-bench -- --quick --host $(HOST_DEBUG)

test-all: test layers
	LAMP_REQUIRE_LAYERS=1 $(CARGO) test -p host --test it layers::

# The Lambda layers and example functions as deterministic zips in dist/ (layer/README.md).
layers: setup php
	$(CARGO) build --release --target x86_64-unknown-linux-musl -p host
	$(CARGO) build -p test-artifacts
	$(CARGO) run --release -p lamp-layer -- --out dist

clean-php:
	rm -rf guests/php/dist target/php

# Our runtime against native PHP (see BENCHMARKS.md); BENCH_FLAGS=--quick for a smoke run.
bench: setup php
	$(CARGO) build --release -p host -p lamp-bench -p test-artifacts
	target/release/lamp-bench --host target/release/host $(BENCH_FLAGS)
