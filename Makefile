# Segmenta developer commands. `make help` lists them.
.DEFAULT_GOAL := help
SHELL := /bin/bash
UV_VERSION := 0.13.8
# uv from PATH, else a private copy (see scripts/bootstrap_uv.py): the system Python is
# never modified, so an "externally managed" one (Debian, Ubuntu) works as well.
UV_BOOTSTRAP ?= .uv-bootstrap
UV := $(shell command -v uv 2>/dev/null || echo $(UV_BOOTSTRAP)/bin/uv)

.PHONY: help install uv demo up test test-fast lint format bench migrate clean llm-env nlp-train chaos soak

help: ## List the commands
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

install: uv ## Install the platform and every extra into .venv (installs uv when missing)
	$(UV) sync --frozen --all-extras

uv: ## Make sure uv is there (into .uv-bootstrap/ when it is not on PATH)
	@command -v uv >/dev/null 2>&1 || test -x $(UV_BOOTSTRAP)/bin/uv \
		|| python3 scripts/bootstrap_uv.py $(UV_VERSION) $(UV_BOOTSTRAP)

demo: install ## Run the platform on embedded PostgreSQL/Redis and load a demo shop
	$(UV) run segmenta demo

up: install ## Run the platform in the foreground (Ctrl-C stops it)
	$(UV) run segmenta up

test: install ## Run the whole test suite (real PostgreSQL, Redis, API and workers)
	$(UV) run pytest

test-fast: install ## Run only the tests that need no servers
	$(UV) run pytest -m unit

lint: install ## ruff (lint + format check) and mypy --strict
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy shared services segmenta tests bench

format: install ## Format the code and apply safe lint fixes
	$(UV) run ruff format .
	$(UV) run ruff check --fix .

bench: install ## Run every benchmark; each rewrites its section of bench/RESULTS.md
	$(UV) run python -m bench.ingest
	$(UV) run python -m bench.nlp_quality
	$(UV) run python -m bench.segment
	$(UV) run python -m bench.personalize
	$(UV) run python -m bench.personalize_exploration
	$(UV) run python -m bench.personalize_context
	$(UV) run python -m bench.recommend
	$(UV) run python -m bench.attribution
	$(UV) run python -m bench.predictions
	$(UV) run python -m bench.anomalies
	$(UV) run python -m bench.clv_split
	$(UV) run python -m bench.key_flood

chaos: install ## Every process killed, paused, Redis and PostgreSQL restarted under load; the ledger
	SEGMENTA_CHAOS=full $(UV) run pytest -m chaos -s tests/chaos

soak: install ## 30 minutes at half capacity (bench/RESULTS.md's soak section; MINUTES=5 for less)
	$(UV) run python -m bench.soak --minutes $(or $(MINUTES),30)

nlp-train: ## Retrain the shipped sentiment model (its own torch environment, ~25 min on 2 cores)
	bash services/nlp/training/setup_env.sh
	HF_HUB_OFFLINE=1 .venv-train/bin/python -m services.nlp.training.train --out services/nlp/model

llm-env: ## Create .venv-llm (CPU torch + transformers serve) for the openai backend's slow test
	bash services/nlp/llm/setup_env.sh

migrate: install ## Migrate the database named by SEGMENTA_DATABASE_URL
	$(UV) run segmenta migrate

clean: ## Remove caches and the local embedded-server data (.segmenta/)
	rm -rf .segmenta .segmenta-llm .uv-bootstrap .pytest_cache .mypy_cache .ruff_cache
