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

.PHONY: install chat test lint bench models simulate population eval

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

# The user-model measurement (issue 12): PEOPLE generated people x SESSIONS sessions, the same
# for every seed; two shards run side by side (one llama.cpp thread each) and are merged into
# runs/population-SEED. Resumes a stopped run. Hours on 2 cores: see README "User model".
PEOPLE ?= 20
SESSIONS ?= 5
SEED ?= 0
POP := runs/population-$(SEED)
population: models
	mkdir -p runs
	test -f $(POP).yaml || $(EMPATHOS) simulate generate --people $(PEOPLE) --sessions $(SESSIONS) \
	  --turns 1 --seed $(SEED) -o $(POP).yaml
	shard() { EMPATHOS_N_THREADS=1 $(EMPATHOS) simulate $(POP).yaml --out $(POP)-s$$1 --shard $$1/2 \
	  --no-last-reaction $$(test -f $(POP)-s$$1/run.json && echo --resume); }; \
	shard 1 & one=$$!; shard 2 & two=$$!; wait $$one && wait $$two
	rm -rf $(POP) && $(EMPATHOS) simulate merge $(POP)-s1 $(POP)-s2 --out $(POP)

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
	$(PY) -m eval.bench_heap
	$(PY) -m eval.bench_safety
	$(PY) -m eval.bench_safety --set eval/safety_fresh.jsonl
	$(PY) -m eval.bench_safety --set eval/safety_fresh2.jsonl
	$(PY) -m eval.bench_safety --set eval/data/safety_simulated.jsonl --batch held-out
	$(PY) -m eval.bench_safety --real
	$(PY) -m eval.bench_analogy --no-model --cases eval/data/analogy_cases_fresh6.jsonl
	$(PY) -m tui.bench
