# wasm-lamp — the commands a newcomer types. Every target installs what it needs first
# (scripts/setup.sh is idempotent and quick when all is there).

CARGO ?= cargo
HOST_DEBUG := target/debug/host
PHP_RUNTIME := guests/php/dist/php.wasm

.PHONY: setup demo demo-rust php host test layers bench clean-php

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

# Everything CI runs. The layer tests (tests/it/layers.rs) unpack the zips `make layers` writes
# (a static build of the host: ~7 min from scratch on 2 cores); LAMP_REQUIRE_LAYERS makes them
# fail rather than skip when dist/ is missing.
test: setup php layers
	LAMP_REQUIRE_LAYERS=1 $(CARGO) test --workspace
	bash guests/php/run-phpt.sh
	$(CARGO) run -q -p lamp-bench -- --quick --host $(HOST_DEBUG)

# The Lambda layers and example functions as deterministic zips in dist/ (layer/README.md).
# The bootstrap's embedded paths (panic locations) are remapped so that any checkout, wherever
# it and cargo's registry are, builds byte-identical zips.
LAYER_RUSTFLAGS := --remap-path-prefix=$(CURDIR)=/lamp --remap-path-prefix=$(or $(CARGO_HOME),$(HOME)/.cargo)=/cargo
layers: setup php
	RUSTFLAGS="$(LAYER_RUSTFLAGS)" $(CARGO) build --profile layer --target x86_64-unknown-linux-musl -p host
	$(CARGO) build -p test-artifacts
	$(CARGO) run --release -p lamp-layer -- --out dist

clean-php:
	rm -rf guests/php/dist target/php

# Our runtime against native PHP (see BENCHMARKS.md); BENCH_FLAGS=--quick for a smoke run.
bench: setup php
	$(CARGO) build --release -p host -p lamp-bench -p test-artifacts
	target/release/lamp-bench --host target/release/host $(BENCH_FLAGS)
