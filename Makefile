# vlproxy — see README.md. Two entry points do all set-up on a fresh machine:
#   make demo   real OpenSearch + sample catalogue + vlproxy on 127.0.0.1:8080
#   make test   every test, against a real OpenSearch node started for the run
SHELL := /bin/bash
GO ?= go
BIN := bin
export GOFLAGS ?= -buildvcs=false

.PHONY: all build deps test-deps opensearch-jars opensearch effnet-install effnet browser test test-unit fuzz vet fmt demo bench bench-passthrough bench-relevance-vector podman-smoke clean

all: build

deps:
	$(GO) mod download

build: deps
	$(GO) build -o $(BIN)/ ./cmd/... ./testenv/cmd/...

# Debian tools the tests run for real: redis-server (fleet mode), promtool (lints a live
# /metrics), podman (the FROM-scratch image). A no-op when they are installed.
test-deps:
	bash testenv/install-deps.sh

# Builds the OpenSearch launcher from Maven Central jars (cached in ~/.m2; a no-op when up to date).
opensearch-jars:
	bash testenv/build.sh

# One OpenSearch node in the foreground on 127.0.0.1:9200.
opensearch: opensearch-jars
	$(GO) run ./testenv/cmd/opensearch -port 9200

# The local image model's venv (.cache/effnet/venv, pinned PyPI versions; a no-op when warm).
effnet-install:
	bash testenv/effnet/install.sh >/dev/null

# The local image model server in the foreground on 127.0.0.1:$(EFFNET_PORT): EfficientNet-Lite0
# embeddings and keywords, RapidOCR table rows (testenv/effnet/README.md).
EFFNET_PORT ?= 8100
effnet:
	$(GO) run ./testenv/cmd/effnet -port $(EFFNET_PORT)

# Debian's chromium for the playground's browser test (a no-op when installed).
browser:
	bash testenv/chromium.sh

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1)

# All tests. One OpenSearch node (VLPROXY_TEST_ES_URL), one local image model server
# (VLPROXY_TEST_EFFNET_URL) and one redis-server (VLPROXY_TEST_REDIS_URL) serve the whole run;
# set those variables yourself to test against external servers instead. The fleet tests start
# private redis-servers too, since they kill them. Debian's chromium runs the playground's
# browser test (REQUIRE_BROWSER=1: a missing browser fails instead of skipping). Debian's ffmpeg
# (from test-deps) samples the video tests' frames (REQUIRE_FFMPEG=1: missing, they fail).
test: deps test-deps opensearch-jars effnet-install browser vet
	REQUIRE_BROWSER=1 REQUIRE_REDIS=1 REQUIRE_PROMTOOL=1 REQUIRE_FFMPEG=1 bash testenv/with-redis.sh bash testenv/with-effnet.sh \
	  bash testenv/with-opensearch.sh $(GO) test -count=1 -p 2 -timeout 30m ./...
	# A fixed number of inputs per fuzz target: a duration-bound run can end with "context deadline
	# exceeded" while a worker's batch is in flight (a go test artefact, not a finding).
	$(MAKE) fuzz FUZZTIME=3000x

# Short runs of every fuzz target (the seed corpora also run inside `go test`). FUZZTIME is a
# duration (10s) or a count of inputs (3000x); a failure prints the fuzzer's output and the input
# it saved under the package's testdata/fuzz.
FUZZTIME ?= 10s
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$f"; \
	    if ! out=$$($(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg 2>&1); then \
	      echo "$$out" | tail -n 40; exit 1; fi; \
	  done; done

# OpenSearch on :9200 with a sample catalogue in index "products", the model simulator unless
# VLPROXY_MODEL_URL is set, and vlproxy on :8080. Ctrl-C stops everything.
demo: build opensearch-jars
	bash testenv/demo.sh

# BENCH_SECTIONS="passthrough.sh cache.sh" (script names of bench/scripts) runs only those sections.
bench: build opensearch-jars
	bash bench/scripts/all.sh

# Photo search with the real image model (testenv/effnet): keywords / vector / hybrid, exact cosine.
bench-relevance-vector: build opensearch-jars
	bash bench/scripts/relevance-vector.sh

bench-passthrough: build
	bash bench/scripts/passthrough.sh

# Builds docker/Dockerfile.scratch with podman (offline) and checks the container in front of a
# test OpenSearch node (also run by `make test` as integration TestPodmanScratchImage).
podman-smoke: test-deps opensearch-jars
	bash testenv/with-opensearch.sh bash docker/podman-smoke.sh

clean:
	rm -rf $(BIN)
