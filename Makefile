# Image Finder. `make run` needs only the runtime; `make test` is what CI runs.
# Every install takes its versions from requirements.lock (`make lock` renews it).
PY ?= python3
VENV ?= .venv
EXPORT_VENV ?= .venv-export
BIN := $(VENV)/bin
EBIN := $(EXPORT_VENV)/bin
# PYTHONWARNINGS quiets setuptools' notes about editable installs, which say nothing to a user.
PIP_FLAGS = install -q --disable-pip-version-check -c requirements.lock

.PHONY: install install-dev test lint test-export install-export bench bench-hostile bench-memory bench-ocr fixtures clean run lock

$(BIN)/python:
	$(PY) -m venv $(VENV)

# The runtime only: prebuilt wheels, nothing compiled.
$(VENV)/.runtime: $(BIN)/python pyproject.toml requirements.lock
	PYTHONWARNINGS=ignore $(BIN)/pip $(PIP_FLAGS) -e .
	@touch $@

# The runtime plus the test and lint tools.
$(VENV)/.dev: $(VENV)/.runtime
	PYTHONWARNINGS=ignore $(BIN)/pip $(PIP_FLAGS) -e ".[dev]"
	@touch $@

install: $(VENV)/.runtime
install-dev: $(VENV)/.dev

# Set up and start the bot: settings from .env (created from .env.example on the first run),
# missing default models downloaded, one clear line and a stop when something is not set.
run: install
	@test -f .env || { cp .env.example .env && \
	  echo "created .env from .env.example: put your BOT_TOKEN from @BotFather there"; }
	@$(BIN)/python -m bot prepare
	$(BIN)/python -m bot

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The PostgreSQL variants run when IMAGE_FINDER_TEST_DATABASE_URL names a server (.ci/run sets
# it up); without it they skip. TEST_PROCESSES=0 runs the suite in this one process.
TEST_PROCESSES ?= 2
test: install-dev
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -n $(TEST_PROCESSES)

# The export tooling (torch, open_clip, ruclip) and youtokentome, the live reference the ruCLIP
# tokenizer is checked against; youtokentome compiles C++ and needs Cython<3 and wheel to build.
$(EBIN)/python:
	$(PY) -m venv $(EXPORT_VENV)

install-export: $(EBIN)/python
	PYTHONWARNINGS=ignore $(EBIN)/pip $(PIP_FLAGS) -e ".[dev,export]"
	$(EBIN)/pip install -q "Cython<3" wheel
	$(EBIN)/python -c "import youtokentome" 2>/dev/null || \
	  $(EBIN)/pip install -q --no-build-isolation youtokentome
	$(EBIN)/pip install -q --no-deps ruclip

test-export: install-export
	$(EBIN)/python -m pytest -q -m export tests/export tests/core/text

fixtures: install-export
	$(EBIN)/python -m tools train-fixture --out tests/fixtures/models

bench: install-export
	$(EBIN)/python bench/embed.py

# The decoder fuzz run and the hostile suite need only the dev install.
bench-hostile: $(VENV)/.dev
	$(BIN)/python bench/fuzz.py --cases 3000
	$(BIN)/python bench/hostile.py

# OCR and text search on the generated ru/en set (Debian's fonts and tesseract data), about
# 10 minutes; `bench/ocr.py --small` takes about one.
bench-ocr: $(VENV)/.dev
	$(BIN)/python bench/ocr.py

# Peak RSS of the default model's random-weight stand-in (built with the export extra).
bench-memory: install-export
	$(EBIN)/python bench/models.py --out bench/out siglip2-b32-256
	$(EBIN)/python bench/memory.py

# Renew requirements.lock: resolve the runtime and dev dependencies in a throwaway venv.
lock:
	rm -rf .lock-venv
	$(PY) -m venv .lock-venv
	.lock-venv/bin/pip install -q --disable-pip-version-check ".[dev]"
	{ echo "# Pinned versions for every install (pip install -c requirements.lock ...)."; \
	  echo "# Made by make lock with $$(.lock-venv/bin/python -V); edit pyproject.toml, not this."; \
	  .lock-venv/bin/pip freeze --all --exclude-editable | grep -v -i -E '^(image-finder|image_finder|pip)( |==)'; } > requirements.lock
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) $(EXPORT_VENV) .pytest_cache .ruff_cache .mypy_cache
