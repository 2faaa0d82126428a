# kwc — Kata Workspace Conformance.
#   make e2e                 the main job (kind + Kata; TARGET=docker for the local engine)
#   make test                unit tests, fixture validation, the docker-target suite, calibration,
#                            the cluster target against a local one-node cluster, and a kind
#                            cluster from kwc's offline node image (make kind-smoke)
SHELL := /bin/bash
GO ?= go
GINKGO := $(GO) run github.com/onsi/ginkgo/v2/ginkgo
TARGET ?= kind
LABELS ?=
KWC_FLAGS ?=
## PARALLEL: how many Ginkgo processes run lanes at once (default: twice the machine's
## cores, because lanes mostly wait on engines and nested builds: on 2 cores 4 processes
## ran the docker lanes in 69 s against 86 s with 2; the kind target and a cluster run
## that installs Kata take 1).
PARALLEL ?= $(if $(filter kind,$(TARGET)),1,$(shell echo $$(( $$(nproc 2>/dev/null || echo 1) * 2 ))))
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo dev)
COMMIT := $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS := -X kwc.dev/kwc/e2e/framework.version=$(VERSION) -X kwc.dev/kwc/e2e/framework.commit=$(COMMIT)
GINKGO_FLAGS = -v --tags=e2e --procs=$(PARALLEL) --timeout=2h --fail-on-empty --poll-progress-after=5m --poll-progress-interval=1m \
	--ldflags="$(LDFLAGS)" $(if $(LABELS),--label-filter='$(LABELS)')

.PHONY: e2e e2e-local e2e-list test unit kube-tools node-image kind-smoke calibrate deps engine-start engine-stop vet fuzz chaos runsc bench

## chaos: the fault test: kill CHAOS_RUNS docker-target runs (SIGKILL, then SIGINT, at
## five phases), run kwc cleanup --run <id> after each, and fail on anything left.
CHAOS_RUNS ?= 20
chaos:
	$(GO) test -tags faults -count=1 -timeout 3h -v ./e2e/faults -faults.runs $(CHAOS_RUNS)

## fuzz: fuzz config loading, gate policy decoding and conformance.json reading
## (FUZZTIME each; make test runs a short round). Seeds are in the tests and testdata/.
FUZZTIME ?= 10s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $(FUZZTIME) ./internal/config/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodePolicy$$' -fuzztime $(FUZZTIME) ./internal/reporting/gate/
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./internal/reporting/report/

## e2e: run the conformance suite against TARGET (kind by default).
e2e:
	$(GINKGO) $(GINKGO_FLAGS) ./e2e -- --kwc.target=$(TARGET) $(KWC_FLAGS)

## e2e-local: the cluster target against a one-node cluster made here from real
## components (kubelet, containerd, runc; no Kata), removed afterwards. Root only.
## DECOY=1 runs the negative control instead: a runc RuntimeClass named like Kata,
## whose lanes must fail (gated by fixtures/policies/decoy-kata.yaml).
e2e-local: kube-tools
	@hack/e2e-local.sh $(if $(DECOY),--decoy)

## e2e-list: show the specs and labels a LABELS filter selects, without running them.
e2e-list:
	$(GINKGO) --dry-run -v --tags=e2e $(if $(LABELS),--label-filter='$(LABELS)') ./e2e -- --kwc.target=docker $(KWC_FLAGS)

## kube-tools: build the API tests' kube-apiserver and etcd and the local cluster's
## controller manager, scheduler and kubelet (cached in .cache/bin).
kube-tools:
	@hack/kube-tools.sh

## node-image: kwc's offline kind node image (Debian bookworm, containerd 2.x, kubeadm,
## kubelet and the control-plane images at client-go's version, all built here), into
## the engine DOCKER_HOST names; prints its reference. About 15 minutes cold.
node-image:
	@hack/kube-tools.sh --node
	@hack/containerd.sh
	$(GO) run ./cmd/kwc node-image

## kind-smoke: kind itself, here: make the node image, create a one-node cluster from
## it through kind's library, check the node is Ready and a pod runs, delete it.
kind-smoke:
	@hack/kube-tools.sh --node
	@hack/containerd.sh
	@set -euo pipefail; ref=$$($(GO) run ./cmd/kwc node-image); $(GO) run ./hack/kindsmoke --node-image "$$ref"

## unit: unit tests, fixture validation, the real-API-server tests, and the kind
## failure-path test (which needs the container engine).
unit: kube-tools
	$(GO) test ./...

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }

## calibrate: run the escape probes on the node, in each lane and in a QEMU VM; fails
## when a probe misses its control or reaches in the VM. CALIBRATE_FLAGS adds flags.
CALIBRATE_FLAGS ?=
calibrate:
	$(GO) run ./cmd/kwc calibrate $(CALIBRATE_FLAGS)

## bench: speed targets, measured, never asserted by a timed test: the probe set per
## context (median under 1.5 s is the target), then the docker-target and local-cluster
## lanes serial and in PARALLEL processes: phases side by side, the ratio, and a
## failure if any verdict differs between the two.
bench: kube-tools runsc
	$(GO) test -run '^$$' -bench ProbeSet -benchtime 10x ./internal/escape/probe/
	@PARALLEL=$(if $(filter command line environment,$(origin PARALLEL)),$(PARALLEL),$$(( $$(nproc) * 2 ))) hack/bench-lanes.sh

## deps: install what the suite needs on Debian/Ubuntu (root), or say what is missing.
deps:
	@hack/deps.sh

## runsc: build gVisor's runsc at its pinned version into .cache/bin (the gVisor lanes).
runsc:
	@hack/runsc.sh >/dev/null

## test: everything that runs on one machine without KVM. Uses DOCKER_HOST when it
## answers; otherwise starts a private engine (with runsc) for the run and stops it.
test: deps vet kube-tools runsc
	@set -euo pipefail; \
	if ! docker version >/dev/null 2>&1; then \
	  eval "$$(hack/engine.sh start)"; trap 'hack/engine.sh stop' EXIT; \
	fi; \
	$(GO) test ./...; \
	$(MAKE) --no-print-directory fuzz FUZZTIME=10s; \
	$(MAKE) --no-print-directory e2e TARGET=docker; \
	$(GO) run ./cmd/kwc report --check-browser reports/latest; \
	$(GO) run ./cmd/kwc gate --policy fixtures/policies/runc-local.yaml reports/latest; \
	$(GO) run ./cmd/kwc gate --policy fixtures/policies/sandbox-local.yaml reports/latest; \
	$(MAKE) --no-print-directory calibrate CALIBRATE_FLAGS=--into-latest; \
	$(MAKE) --no-print-directory chaos CHAOS_RUNS=2; \
	$(MAKE) --no-print-directory e2e TARGET=docker KWC_FLAGS="--kwc.config $(CURDIR)/fixtures/configs/corpus.yaml"; \
	$(GO) run ./cmd/kwc gate --policy fixtures/policies/corpus.yaml reports/latest; \
	hack/e2e-local.sh; \
	$(GO) run ./cmd/kwc report --check-browser reports/latest; \
	$(GO) run ./cmd/kwc gate --policy fixtures/policies/runc-local.yaml reports/latest; \
	hack/e2e-local.sh --decoy; \
	$(MAKE) --no-print-directory kind-smoke

engine-start:
	@hack/engine.sh start
engine-stop:
	@hack/engine.sh stop
