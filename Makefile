# The two commands of the README, and the benchmarks. Everything they need is installed by
# scripts/lib.sh into .venv (moto, cfn-lint, cargo-lambda).
.PHONY: dev test test-faults bench fmt lint runtime-sim-image openapi fuzz

dev:   ## install what is missing, start the emulator, create resources, bootstrap the admin, serve the API
	@scripts/dev.sh

test:  ## start a private emulator, lint the SAM template, run every test in the workspace
	@scripts/test.sh

test-faults: ## the concurrency and idempotency tests against an emulator injecting DynamoDB conflicts, throttling and 500s
	@scripts/test-faults.sh

runtime-sim-image: ## build callplane/runtime-sim:dev (FROM scratch, static binary; pulls nothing)
	@scripts/runtime-sim-image.sh

bench: ## binary sizes, cold starts, DynamoDB round trips per operation
	@scripts/bench.sh

fmt:
	cargo fmt --all

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

fuzz: ## schemathesis over the API description against a fresh local stack (FUZZ_EXAMPLES per operation)
	@scripts/fuzz.sh

openapi: ## write the API description the code declares to docs/openapi.json (commit it)
	cargo run -q -p callplane-tests --bin openapi
