# vipbridge: the README's two commands are `go run ./cmd/vipbridge demo` and `make test`.
GO      ?= go
PKGS    ?= ./...
FUZZTIME ?= 10s

.PHONY: all build deb test-deb bench-restart test test-standalone test-kernel bench-kernel bench-nft bench-go vet bench bench-dns bench-forward bench-propagation bench-scale bench-cluster demo fuzz soak chaos clean

all: build

# VERSION is the version built into the binary and the package, from git
# describe in Debian's syntax (scripts/version.sh).
VERSION ?= $(shell scripts/version.sh)

# build: the static binary (CGO_ENABLED=0) with VERSION built in.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-X main.version=$(VERSION)' -o bin/vipbridge ./cmd/vipbridge

# deb: bin/vipbridge_<version>_<arch>.deb, packed by nfpm (scripts/build-deb.sh).
deb:
	VERSION='$(VERSION)' GO=$(GO) scripts/build-deb.sh

# test-deb builds the package and checks it: installed into a throwaway
# root, its files, one version everywhere, the units, lintian.
test-deb:
	VERSION='$(VERSION)' GO=$(GO) scripts/test-deb.sh

# test runs every test (unit, upstream-fixture, loopback end-to-end) with the
# race detector. Tests that need ../shared (upstream fixtures) skip with one
# line when it is missing, and fail under CI=true.
test: vet
	scripts/test-deps.sh
	$(GO) test -race -count=1 -timeout 20m $(PKGS)
	VERSION='$(VERSION)' GO=$(GO) scripts/test-deb.sh
	scripts/test-kernel.sh

# test-standalone runs the suite as a lone clone does: HEAD cloned into a
# temporary directory with no ../shared beside it, CI and
# VIPBRIDGE_UPSTREAM_FIXTURES unset, `go test -count=1 ./...` (no race
# detector: make test runs the same tests with it). Tests that need the
# upstream fixtures must skip with one line each; it prints every skip and
# fails if a test fails or none skipped for the fixtures. .ci/run runs it
# after make test.
test-standalone:
	GO=$(GO) scripts/test-standalone.sh

# test-kernel runs the IPVS tests (package lb, and the daemon with --lb ipvs)
# as root on a real IPVS kernel in a throwaway VM (../shared/tools/kvm-run).
test-kernel:
	scripts/test-kernel.sh

# bench-kernel: IPVS benchmarks (10,000 VIPs x 5 backends) in the VM; the
# from-empty run in a VM of its own (IPVS's destination trash penalises a
# second run in the same kernel).
KVM_RUN ?= ../shared/tools/kvm-run
bench-kernel:
	CGO_ENABLED=0 $(GO) test -c -o bin/lb.test ./lb
	$(KVM_RUN) --mem 1G --timeout 900 bin/lb.test -test.run '^$$' -test.bench KernelApplyFromEmpty -test.benchtime 1x
	$(KVM_RUN) --mem 1G --timeout 900 bin/lb.test -test.run '^$$' -test.bench KernelApplyOneChange -test.benchtime 30x
	$(KVM_RUN) --mem 1G --timeout 900 bin/lb.test -test.run '^$$' -test.bench 'Kernel(ApplyNoop|RepairNoop)' -test.benchtime 3x
	$(KVM_RUN) --mem 1G --timeout 900 bin/lb.test -test.run '^$$' -test.bench '^Benchmark(Apply|Repair|LocalRoutes)' -test.benchtime 5x

# bench-nft: nftables dataplane benchmarks (10,000 VIPs x 5 backends),
# natively in network namespaces (root); figures in the README.
bench-nft:
	scripts/bench-nft.sh

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { gofmt -l .; echo "gofmt needed"; exit 1; }
	$(GO) vet $(PKGS)

# bench-forward: vipbridge forwarding to a local Knot (100,000 names), next
# to dnsdist (packet cache off, then on) and unbound; uncached and cached
# query sets, added latency (issue 11).
bench-forward:
	scripts/bench-forward.sh

# bench runs every measurement: the Go benchmarks, then DNS throughput next
# to Knot and NSD, propagation and scale (bench-kernel, in the VM, is apart),
# and ends with one summary table of every figure next to its peer and its
# goal (each target appends rows to BENCH_SUMMARY). Figures go in the
# README; nothing is asserted.
BENCH_SUMMARY ?= bin/bench-summary.tsv
bench:
	mkdir -p $(dir $(BENCH_SUMMARY)) && : >$(BENCH_SUMMARY)
	VIPBRIDGE_BENCH_SUMMARY=$(abspath $(BENCH_SUMMARY)) $(MAKE) --no-print-directory bench-go bench-dns bench-propagation bench-scale
	scripts/bench-summary.sh $(BENCH_SUMMARY)

bench-go:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 1s $(PKGS)

# bench-dns serves 10,000 VIP names and the task zones of 100,000 tasks
# (10,000 apps x 10) from vipbridge, Knot and NSD and drives each with
# dnsperf, one query mix for each (scripts/bench-dns.sh; installs the
# Debian packages).
bench-dns:
	scripts/bench-dns.sh

# fuzz runs every fuzz target for FUZZTIME each.
fuzz:
	@for p in $$($(GO) list $(PKGS)); do \
	  for f in $$($(GO) test -list '^Fuzz' $$p | grep '^Fuzz'); do \
	    echo "== $$p $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$p || exit 1; \
	  done; \
	done

# soak kill -9s the real daemon KILLS times under write load (make test
# runs 200) and checks the store after each kill.
KILLS ?= 2000
soak:
	VIPBRIDGE_SOAK_KILLS=$(KILLS) $(GO) test -race -count=1 -run '^TestCrashSafety$$' -timeout 120m -v ./cmd/vipbridge

# chaos runs ROUNDS random fault rounds against the real daemon with a new
# seed each time (make test replays seed 1 for 3 rounds).
ROUNDS ?= 200
chaos:
	CHAOS_SEED=$$(date +%s) CHAOS_ROUNDS=$(ROUNDS) $(GO) test -race -count=1 -run '^TestChaos$$' -timeout 60m -v ./cmd/vipbridge

# bench-restart: DNS queries lost and the longest answer while the daemon
# restarts under dnsperf load, with systemd's held sockets (played by
# scripts/socketholder) and, for comparison, without.
bench-restart:
	scripts/bench-restart.sh

# bench-propagation: event → DNS-visible (in l4lb, .mesos and autoip) and
# → dataplane-applied, steady and in bursts, with 100 and 10,000 apps in
# place.
bench-propagation:
	./scripts/bench-propagation.sh

# bench-cluster: cluster mode on a real 3-member etcd, 2 publishers, 100
# and 500 node daemons: event → all nodes, writes per change, failover
# (scripts/bench-cluster.sh; needs etcd from scripts/test-deps.sh).
bench-cluster:
	./scripts/bench-cluster.sh

# bench-scale: 10,000 apps / 100,000 tasks: initial sync, peak RSS, restart
# from bbolt with the upstreams down, bbolt size after 1,000,000 cycles.
bench-scale:
	./scripts/bench-scale.sh

demo:
	$(GO) run ./cmd/vipbridge demo

# screenshot rewrites docs/status-page.png and docs/status-page-phone.png
# (the README's) with the status page's browser test (needs chromium).
.PHONY: screenshot
screenshot:
	VIPBRIDGE_UI_ARTIFACTS=$(CURDIR)/docs $(GO) test -count=1 -run '^TestStatusPage$$' ./cmd/vipbridge

clean:
	rm -rf bin
