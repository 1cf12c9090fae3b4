# carenotify: the only entry point for people and CI. `make` lists the targets.

SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO        ?= go
BUF       := tools/node_modules/.bin/buf
PLUGINS   := tools/bin/protoc-gen-go tools/bin/protoc-gen-go-grpc
# Every Go module; each must also build on its own (GOWORK=off).
MODULES   := proto pkg services/ingest services/journey services/email services/sms services/forms deploy/devstack test
SERVICES  := ingest journey email sms forms
GOTEST_FLAGS ?= -race -count=1 -timeout 15m

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "; printf "carenotify make targets:\n\n"} /^[a-zA-Z_-]+:.*## / {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## build the five services, carenotifyctl and the dev tools into bin/
	$(GO) build -o bin/ $(foreach s,$(SERVICES),./services/$(s)/cmd/$(s)) ./services/journey/cmd/carenotifyctl ./deploy/devstack/cmd/devstack ./deploy/devstack/cmd/demo

.PHONY: test
test: modules-build bench-smoke fuzz-smoke ## run every test (unit, integration, end-to-end) with the race detector
	$(GO) test $(GOTEST_FLAGS) work

.PHONY: bench
bench: ## run the benchmark scenarios (issue 7), each figure the median of 3 runs; writes bench/results.md (about 30 min with scenario e at 1M pending)
	$(GO) run ./test/bench/cmd/bench -runs 3 -out bench/results.md

.PHONY: bench-smoke
bench-smoke: ## run every benchmark scenario for a few seconds to check the harness; fails on any error
	$(GO) run ./test/bench/cmd/bench -smoke -out bench/smoke.tmp

FUZZTIME      ?= 60s
FUZZSMOKETIME ?= 5s
# Fuzz targets that fuzz-smoke runs inside `make test`: the HL7 parser, the MLLP
# framer and the FHIR notification decoder (package dir:FuzzName).
FUZZ_SMOKE := pkg/hl7:FuzzParse pkg/hl7/mllp:FuzzMLLPReader services/ingest/internal/fhirnotify:FuzzParseNotification services/ingest/internal/fhirnotify:FuzzParsePush

.PHONY: fuzz
fuzz: ## run every fuzz target in the repo for FUZZTIME each (default 60s)
	@grep -rln --include='*_test.go' --exclude-dir=.git --exclude-dir=node_modules --exclude-dir=var '^func Fuzz' . | sort | while read -r f; do \
	  d=$$(dirname "$$f"); \
	  for n in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$$f"); do \
	    echo "fuzz $$d $$n for $(FUZZTIME)"; \
	    (cd "$$d" && $(GO) test -run='^$$' -fuzz="^$$n$$" -fuzztime=$(FUZZTIME) .) || exit 1; \
	  done; \
	done

.PHONY: fuzz-smoke
fuzz-smoke: ## run the HL7, MLLP and notification fuzz targets for FUZZSMOKETIME each (default 5s); part of `make test`
	@for t in $(FUZZ_SMOKE); do d=$${t%%:*}; n=$${t##*:}; echo "fuzz $$d $$n for $(FUZZSMOKETIME)"; \
	  (cd "$$d" && $(GO) test -run='^$$' -fuzz="^$$n$$" -fuzztime=$(FUZZSMOKETIME) .); done

.PHONY: modules-build
modules-build: ## check go.mod is tidy, build and vet every module on its own (GOWORK=off)
	@for m in $(MODULES); do echo "GOWORK=off go build ./... in $$m"; (cd $$m && GOWORK=off $(GO) mod tidy -diff && GOWORK=off $(GO) build ./... && GOWORK=off $(GO) vet ./...); done

.PHONY: run
run: ## run the whole system on this machine: NATS, Redis, the 5 services, dev inbox at http://localhost:8025
	$(GO) build -o bin/devstack ./deploy/devstack/cmd/devstack
	bin/devstack

.PHONY: demo
demo: ## post sample EHR notifications to `make run` and show the email that arrives
	$(GO) build -o bin/demo ./deploy/devstack/cmd/demo
	bin/demo

$(BUF): tools/package.json tools/package-lock.json
	cd tools && npm install --no-audit --no-fund --loglevel=error
	@touch $@

tools/bin/%: tools/go.mod tools/go.sum
	cd tools && GOWORK=off $(GO) build -o bin/ google.golang.org/protobuf/cmd/protoc-gen-go google.golang.org/grpc/cmd/protoc-gen-go-grpc

.PHONY: proto
proto: $(BUF) $(PLUGINS) ## lint the .proto files and regenerate proto/gen/go
	cd proto && ../$(BUF) lint && ../$(BUF) generate

.PHONY: proto-check
proto-check: proto ## fail when the committed generated code is not what `make proto` makes
	@git diff --exit-code -- proto/gen || { echo "proto/gen is stale: run 'make proto' and commit" >&2; exit 1; }
	@test -z "$$(git status --porcelain -- proto/gen)" || { git status --porcelain -- proto/gen; echo "proto/gen has uncommitted files: run 'make proto' and commit" >&2; exit 1; }

.PHONY: lint
lint: $(BUF) ## buf lint, gofmt and go vet
	cd proto && ../$(BUF) lint
	@out=$$(gofmt -l $$(git ls-files '*.go')); test -z "$$out" || { echo "not gofmt-ed:"; echo "$$out"; exit 1; }
	$(GO) vet work

.PHONY: fmt
fmt: ## gofmt every Go file
	gofmt -w $$(git ls-files '*.go')

.PHONY: ci
ci: proto-check lint test ## what CI runs (.ci/run)

.PHONY: clean
clean: ## remove build output and the dev stack's data (./var)
	rm -rf bin var tools/bin
