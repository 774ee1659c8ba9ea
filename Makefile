# Makefile for distribute. `make help` lists the targets.

GO      ?= go
FUZZTIME ?= 30s
# Fuzz targets run by `make fuzz` (package:target).
FUZZ_TARGETS := \
	./etf:FuzzDecode \
	./etf:FuzzParse \
	./control:FuzzDecode \
	./control:FuzzReader \
	./epmd:FuzzServerRequest \
	./epmd:FuzzClientReply \
	./handshake:FuzzAccept \
	./handshake:FuzzInitiate

.PHONY: help build test unit tidy fuzz bench run vet clean otp

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

build: ## build bin/distribute
	$(GO) build -o bin/distribute ./cmd/distribute

test: tidy ## the whole suite: go.mod tidy check, every test with -race, then each fuzz target for $(FUZZTIME)
	$(GO) test -race -count=1 -timeout 25m ./...
	$(MAKE) --no-print-directory fuzz

unit: ## tests only, without the fuzz runs
	$(GO) test -race -count=1 -timeout 25m ./...

tidy: ## fail when go.mod or go.sum are not what `go mod tidy` makes (prints the diff)
	@$(GO) mod tidy -diff || (echo "run: go mod tidy" >&2; exit 1)

fuzz: ## each fuzz target for $(FUZZTIME)
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "== fuzz $$pkg $$name for $(FUZZTIME)"; \
		$(GO) test -run='^$$' -fuzz="^$$name$$" -fuzztime=$(FUZZTIME) $$pkg; \
	done

bench: ## compare connect, ping, health, messages, calls, memory, throughput with BEAM and ergo (ARGS=-quick, -o FILE, ...)
	$(GO) run ./bench $(ARGS)

run: ## run a node (embedded EPMD when none runs); NAME=alive or alive@host (a short name, as erl -sname)
	$(GO) run ./cmd/distribute run --sname $(or $(NAME),demo)

vet: ## go vet and gofmt check
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)

otp: ## build the OTP 27 (Debian trixie) and newest OTP (sid) chroots the interop tests also run on (root, debootstrap; DISTRIBUTE_OTP_CACHE)
	bash scripts/otp.sh

clean: ## remove build output
	rm -rf bin

faults: ## the fault and hostile-input suite (test/faults, real erl/epmd, netns as root) and its summary table
	$(GO) test -race -count=1 -timeout 10m -v ./test/faults/ -args -faults.summary
