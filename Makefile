# empathos: `make chat` installs everything and starts a chat; `make test` installs and runs the tests.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
EMPATHOS := $(VENV)/bin/empathos
MODEL ?= qwen2.5-coder-1.5b-instruct
TEST_MODEL ?= smollm2-135m-instruct
CHAT_USER ?= $(or $(USER),me)
SCENARIO ?= exam_anxiety
# llama-cpp-python builds from source: portable, no extras (pip caches the built wheel).
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF \
  -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF

.PHONY: install chat test lint bench models simulate eval

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip wheel
	# Pin torch first: this exact version is the CPU build; any other spec pulls CUDA wheels.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

models: install
	$(EMPATHOS) models install $(MODEL)

chat: models
	$(EMPATHOS) chat --user $(CHAT_USER)

# Live weeks with one of the example people (examples/*.yaml); RUN_DIR is runs/$(SCENARIO).
simulate: models
	$(EMPATHOS) simulate examples/$(SCENARIO).yaml --out runs/$(SCENARIO) $(if $(wildcard runs/$(SCENARIO)/run.json),--resume)

# The shipped benchmark through every pipeline variant, judged by the default model (its own
# context); the report is runs/eval/report.html (resumes if run before).
eval: models
	$(EMPATHOS) eval run eval/benchmarks/empathos-small.jsonl --judge-model $(MODEL) \
	  --rubrics likert,personaemp --report runs/eval $(if $(wildcard runs/eval/records.jsonl),--resume)

test: install
	$(EMPATHOS) models install $(TEST_MODEL)
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check agent memory strategies tui eval tests
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

bench: models
	$(EMPATHOS) models install qwen2.5-coder-0.5b-instruct
	$(PY) -m eval.bench_turn
	$(PY) -m eval.bench_memory_questions
	$(PY) -m eval.bench_memory
	$(PY) -m eval.bench_safety
	$(PY) -m eval.bench_safety --set eval/safety_fresh.jsonl
	$(PY) -m eval.bench_safety --real
	$(PY) -m tui.bench
