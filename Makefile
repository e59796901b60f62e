# Thin aliases: the README's commands are the scripts themselves.
.PHONY: up test lint bench bench-peers loadtest capacity chart-check crds kind-up kind-down
up:    ## run the whole local stack (Redis, simulator, API, worker)
	scripts/up.sh
test:  ## every check and every test
	scripts/test.sh
lint:  ## ruff, mypy and the layer contracts only
	uv run ruff check src tests bench scripts loadtest && uv run ruff format --check src tests bench scripts loadtest && uv run mypy && uv run lint-imports
bench: ## every benchmark, one after the other (figures and ratios, asserts nothing; ~60 min)
	scripts/bench.sh
bench-peers: ## against LiteLLM Proxy and LangGraph (installs them into .cache/; ~15 min)
	scripts/bench.sh peers
loadtest: ## Locust against the local stack: USERS, SPAWN_RATE, DURATION, LLM_LATENCY (s per call)
	scripts/loadtest.sh
capacity: ## capacity plan: sizing table, autoscaler replay and plot (docs/capacity.md)
	uv run --frozen python bench/capacity.py
chart-check: ## the chart through the real helm binary: lint --strict and template, every profile
	scripts/chart-check.sh
crds: ## regenerate the committed CRDs (k8s/crds/, the chart's crds subchart) from the models
	scripts/gen-crds.sh
kind-up:   ## the stack on a local kind cluster: kps, KEDA, metrics-server, image, chart, helm test
	scripts/kind-up.sh
kind-down: ## delete that kind cluster
	scripts/kind-up.sh down
