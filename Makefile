# gitmon: build, test and check. `make help` lists the targets.
GO        ?= go
BIN       ?= bin/gitmon
TESTFLAGS ?=
FUZZTIME  ?= 30s

.PHONY: help build proto test check demo bench fuzz deps clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

build: ## build bin/gitmon (static, no cgo) and the example plugin bin/gitmon-smoke
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w" -o $(BIN) ./cmd/gitmon
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w" -o bin/gitmon-smoke ./plugins/examples/smoke

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
