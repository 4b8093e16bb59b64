# Image Finder. `make test` is what CI runs; `make test-export` needs the torch extra.
PY ?= python3
VENV ?= .venv
EXPORT_VENV ?= .venv-export
BIN := $(VENV)/bin
EBIN := $(EXPORT_VENV)/bin

.PHONY: install test lint test-export install-export bench fixtures clean run

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -q -e ".[dev]"
	@# youtokentome is a test-only reference for the ruCLIP tokenizer; it needs Cython<3 to build.
	$(BIN)/python -c "import youtokentome" 2>/dev/null || { \
	  $(BIN)/pip install -q "Cython<3" && \
	  $(BIN)/pip install -q --no-build-isolation youtokentome; }

# Set up and start the bot: settings from .env (created from .env.example on the first run),
# missing default models downloaded, one clear line and a stop when something is not set.
run: install
	@test -f .env || { cp .env.example .env && \
	  echo "created .env from .env.example: put your BOT_TOKEN from @BotFather there"; }
	@$(BIN)/python -m bot prepare
	$(BIN)/python -m bot

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: install
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

$(EBIN)/python:
	$(PY) -m venv $(EXPORT_VENV)
	$(EBIN)/pip install -q --upgrade pip

install-export: $(EBIN)/python
	$(EBIN)/pip install -q -e ".[dev,export]"
	$(EBIN)/pip install -q "Cython<3"
	$(EBIN)/pip install -q --no-build-isolation youtokentome
	$(EBIN)/pip install -q --no-deps ruclip

test-export: install-export
	$(EBIN)/python -m pytest -q -m export tests/export

fixtures: install-export
	$(EBIN)/python -m core.models train-fixture --out tests/fixtures/models

bench: install-export
	$(EBIN)/python bench/embed.py

clean:
	rm -rf $(VENV) $(EXPORT_VENV) .pytest_cache .ruff_cache
