# ephysd: the two commands a lab needs.
#   make run    build, then start the daemon on the simulated device (Ctrl-C stops it cleanly)
#   make test   every check: formatting and lints, Rust unit/integration tests, then the interop
#               tests with the real Python clients (radiens-core, cl-sdk, h5py, PyTables) in a Python
#               3.12 virtualenv
# Both install what they lack first (HDF5 development files, the virtualenv).

CARGO  ?= cargo
VENV   ?= .venv
ARGS   ?=
PY     := $(VENV)/bin/python

.PHONY: run test lint test-rust test-interop deps toolchain venv bench fuzz clean

run: deps
	$(CARGO) build --release -p ephysd
	./target/release/ephysd run $(ARGS)

# One full build, not an edit loop: no incremental-compilation caches (they would double the
# target directory's size).
test: export CARGO_INCREMENTAL = 0
test: deps venv
	$(MAKE) lint
	$(MAKE) test-rust
	$(MAKE) test-interop

# Formatting (rustfmt.toml) and every clippy lint, as errors.
lint: toolchain
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# The emulated board's copy of the FrontPanel library first: the tests load it through the
# same path as the vendor's libokFrontPanel.so; and the stand-in for an XDAQ gen 2 device
# manager (its one C entry point), which the tests load as KonteX's library is loaded.
test-rust:
	$(CARGO) build -p okfp-emu -p xdaq-manager-stub
	$(CARGO) test --workspace

# The interop tests dial the fixed Allego ports 50051-50055, so they run one at a time.
test-interop: venv
	$(CARGO) build -p ephysd -p ephysd-proto -p ephysd-hdf5 -p ephysd-pipeline -p ephysd-drivers --bins --examples
	$(CARGO) build -p okfp-emu -p xdaq-manager-stub
	$(PY) -m pytest tests/interop -p no:cacheprovider -v

bench: deps
	$(CARGO) bench -p ephysd -p ephysd-pipeline --bench pipeline --bench allego --bench stages

# Fuzzes the Rhythm USB frame decoder for FUZZ_SECONDS (default 60) with cargo-fuzz, starting
# from the corpus in drivers/fuzz/corpus/decode (new inputs go to drivers/fuzz/corpus-work;
# `cargo fuzz cmin` folds them back). libFuzzer needs unstable compiler flags: a nightly
# toolchain, or RUSTC_BOOTSTRAP=1 on stable, which is what this uses. A crash fails the target
# and leaves its input in drivers/fuzz/artifacts/decode.
FUZZ_SECONDS ?= 60
fuzz:
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	mkdir -p drivers/fuzz/corpus-work
	cd drivers/fuzz && RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run decode corpus-work corpus/decode -- -max_total_time=$(FUZZ_SECONDS)

# rustfmt and clippy, when the toolchain came without them.
toolchain:
	@for component in rustfmt clippy; do \
		if ! $(CARGO) $$( [ $$component = rustfmt ] && echo fmt || echo clippy ) --version >/dev/null 2>&1; then \
			echo "installing $$component"; rustup component add $$component; \
		fi; \
	done

# HDF5 development files (hdf5-metno links the system library) and pkg-config.
deps:
	@if ! dpkg -s libhdf5-dev >/dev/null 2>&1 || ! command -v pkg-config >/dev/null; then \
		echo "installing libhdf5-dev and pkg-config"; \
		SUDO=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq libhdf5-dev pkg-config; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: tests/requirements.txt tests/find-python312.sh
	@PY312=$$(tests/find-python312.sh) && echo "using $$PY312" && "$$PY312" -m venv --clear $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r tests/requirements.txt
	touch $@

clean:
	$(CARGO) clean
	rm -rf $(VENV)
