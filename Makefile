# Thin aliases: the README's commands are the scripts themselves.
.PHONY: up test lint bench
up:    ## run the whole local stack (Redis, simulator, API, worker)
	scripts/up.sh
test:  ## every check and every test
	scripts/test.sh
lint:  ## ruff, mypy and the layer contracts only
	uv run ruff check src tests bench && uv run ruff format --check src tests bench && uv run mypy && uv run lint-imports
bench: ## worker concurrency benchmark (prints figures, asserts nothing)
	uv run python bench/worker_concurrency.py
