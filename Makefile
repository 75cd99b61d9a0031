# gitmon: build, test and check. `make help` lists the targets.
GO        ?= go
BIN       ?= bin/gitmon
SMOKE     ?= $(dir $(BIN))gitmon-smoke
TESTFLAGS ?=
FUZZTIME  ?= 30s

# What `gitmon version` and gitmon_build_info report (internal/buildinfo).
# VERSION is the nearest tag (git describe), else dev; COMMIT the full
# commit id, with -dirty when tracked files differ from it; BUILD_DATE is
# now in UTC, or SOURCE_DATE_EPOCH when set, for reproducible builds.
VERSION    ?= $(shell git describe --tags --dirty 2>/dev/null || echo dev)
COMMIT     ?= $(shell c=$$(git rev-parse HEAD 2>/dev/null) && { git diff --quiet HEAD -- 2>/dev/null || c=$$c-dirty; } && echo $$c)
BUILD_DATE ?= $(shell date -u -d "@$(or $(SOURCE_DATE_EPOCH),$$(date +%s))" +%Y-%m-%dT%H:%M:%SZ 2>/dev/null || date -u +%Y-%m-%dT%H:%M:%SZ)
BUILDINFO  := github.com/gitmon-dev/gitmon/internal/buildinfo
STAMP       = -X $(BUILDINFO).version=$(VERSION) -X $(BUILDINFO).commit=$(COMMIT) -X $(BUILDINFO).date=$(BUILD_DATE)

.PHONY: help build proto test check demo bench fuzz deps clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

build: ## build bin/gitmon (static, no cgo, stripped, stamped with VERSION, COMMIT, BUILD_DATE) and the example plugin SMOKE (bin/gitmon-smoke)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w $(STAMP)" -o $(BIN) ./cmd/gitmon
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w" -o $(SMOKE) ./plugins/examples/smoke

proto: ## regenerate plugins/proto (needs protoc, protoc-gen-go, protoc-gen-go-grpc)
	$(GO) generate ./plugins/proto

deps: ## install what the tests need (git, sshd) when root, or say what is missing
	@./scripts/deps.sh

test: deps ## run every test, end-to-end included, with the race detector
	$(GO) test -race -count=1 $(TESTFLAGS) ./...

check: ## gofmt, go vet, and go mod tidy leaves no diff
	@out=$$(gofmt -l .); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@tmp=$$(mktemp -d) && cp go.mod go.sum "$$tmp"/ && $(GO) mod tidy && \
	  if ! cmp -s go.mod "$$tmp/go.mod" || ! cmp -s go.sum "$$tmp/go.sum"; then \
	    echo "go mod tidy changes go.mod/go.sum:"; diff -u "$$tmp/go.mod" go.mod; \
	    cp "$$tmp/go.mod" "$$tmp/go.sum" .; rm -rf "$$tmp"; exit 1; fi; rm -rf "$$tmp"

demo: build ## run gitmon's demo on its embedded example
	./$(BIN) demo

bench: build ## every benchmark, each with its same-run baseline (a few minutes)
	$(GO) test -run '^$$' -bench . -benchmem ./descriptors ./policy ./internal/...
	$(GO) test -run '^$$' -bench 'ListBranches|ManyRefs' -benchmem -benchtime 200x ./monitor
	$(GO) test -run '^$$' -bench 'Plugin|InProcess|Exec' -benchtime 2s ./runners
	$(GO) test -run '^$$' -bench 'DetectionLatency' -benchtime 30x ./test
	$(GO) test -run '^$$' -bench 'Throughput1000|IdleRSS' -benchtime 1x ./test
	$(GO) test -run '^$$' -bench 'PollSchedule' -benchtime 1x -timeout 30m ./test
	./scripts/hostile-timing.sh $(BIN)

fuzz: ## run each fuzz target for FUZZTIME
	$(GO) test ./descriptors -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME)
	$(GO) test ./internal/config -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME)
	$(GO) test ./policy -run '^$$' -fuzz FuzzEvaluate -fuzztime $(FUZZTIME)

clean: ## remove build output
	rm -rf bin
