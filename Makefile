# Thin aliases: the README's commands are the scripts themselves.
.PHONY: up test lint bench chart-check kind-up kind-down
up:    ## run the whole local stack (Redis, simulator, API, worker)
	scripts/up.sh
test:  ## every check and every test
	scripts/test.sh
lint:  ## ruff, mypy and the layer contracts only
	uv run ruff check src tests bench && uv run ruff format --check src tests bench && uv run mypy && uv run lint-imports
bench: ## worker concurrency benchmark (prints figures, asserts nothing)
	uv run python bench/worker_concurrency.py
chart-check: ## the chart through the real helm binary: lint --strict and template, every profile
	scripts/chart-check.sh
kind-up:   ## the stack on a local kind cluster: kps, KEDA, metrics-server, image, chart, helm test
	scripts/kind-up.sh
kind-down: ## delete that kind cluster
	scripts/kind-up.sh down
