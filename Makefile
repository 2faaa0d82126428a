# kwc — Kata Workspace Conformance.
#   make e2e                 the main job (kind + Kata; TARGET=docker for the local engine)
#   make test                unit tests, fixture validation, the docker-target suite, calibration,
#                            and the kind target on a cluster from kwc's offline node image
#                            (runc lanes, then the kata-decoy negative control: make e2e-kind)
SHELL := /bin/bash
GO ?= go
GINKGO := $(GO) run github.com/onsi/ginkgo/v2/ginkgo
TARGET ?= kind
LABELS ?=
KWC_FLAGS ?=
## PARALLEL: how many Ginkgo processes run lanes at once. Default: twice the machine's
## cores, because lanes mostly wait on engines and nested builds (on 2 cores 4 processes
## ran the docker lanes in 69 s against 86 s with 2); on the kind target the cores, since
## each Kata lane there is a VM with its own memory. On the kind target process 1 brings
## the cluster up and the others join it; a cluster-target run that installs Kata takes 1.
CORES := $(shell nproc 2>/dev/null || echo 1)
PARALLEL ?= $(if $(filter kind,$(TARGET)),$(CORES),$(shell echo $$(( $(CORES) * 2 ))))
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo dev)
COMMIT := $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS := -X kwc.dev/kwc/e2e/framework.version=$(VERSION) -X kwc.dev/kwc/e2e/framework.commit=$(COMMIT)
GINKGO_FLAGS = -v --tags=e2e --procs=$(PARALLEL) --timeout=2h --fail-on-empty --poll-progress-after=5m --poll-progress-interval=1m \
	--ldflags="$(LDFLAGS)" $(if $(LABELS),--label-filter='$(LABELS)')

.PHONY: e2e e2e-kind e2e-list test unit kube-tools node-binaries node-image calibrate deps engine-start engine-stop vet fuzz chaos runsc bench

## chaos: the fault test: kill CHAOS_RUNS docker-target runs (SIGKILL, then SIGINT, at
## five phases), run kwc cleanup --run <id> after each, and fail on anything left.
CHAOS_RUNS ?= 20
chaos:
	$(GO) test -tags faults -count=1 -timeout 3h -v ./e2e/faults -faults.runs $(CHAOS_RUNS)

## fuzz: fuzz config loading, gate policy decoding and conformance.json reading
## (FUZZTIME each; make test runs a short round). Seeds are in the tests and testdata/.
## FUZZTIME is a count (Nx), not a duration: with a duration, Go 1.26's fuzz coordinator
## races its own deadline and can fail a target that found nothing with "context
## deadline exceeded" (go.dev/issue/75804, fixed in Go 1.27). A cold-cache CI run here
## hit it, with the workers starved while they minimized new inputs.
FUZZTIME ?= 2000x
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $(FUZZTIME) ./internal/config/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodePolicy$$' -fuzztime $(FUZZTIME) ./internal/reporting/gate/
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./internal/reporting/report/

## e2e: run the conformance suite against TARGET (kind by default).
e2e:
	$(GINKGO) $(GINKGO_FLAGS) ./e2e -- --kwc.target=$(TARGET) $(KWC_FLAGS)

## e2e-kind: kind itself on a machine without KVM: a one-node cluster created through
## kind's library from kwc's offline node image, the runc lanes and controls as pods
## (fixtures/configs/kind-local.yaml), gated by fixtures/policies/runc-local.yaml.
## DECOY=1 runs the negative control instead: kata-decoy, runc under a Kata name, whose
## lanes must fail escape (fixtures/policies/decoy-kata.yaml gates that; the suite
## itself fails then, as it must).
## Without Kata its lanes are containers, so it takes twice the cores like the docker target.
E2E_KIND_PARALLEL = $(if $(filter command line environment,$(origin PARALLEL)),$(PARALLEL),$(shell echo $$(( $(CORES) * 2 ))))
e2e-kind: node-binaries
ifeq ($(DECOY),)
	$(MAKE) --no-print-directory e2e TARGET=kind PARALLEL=$(E2E_KIND_PARALLEL) KWC_FLAGS="--kwc.config=$(CURDIR)/fixtures/configs/kind-local.yaml $(KWC_FLAGS)"
	$(GO) run ./cmd/kwc gate --policy fixtures/policies/runc-local.yaml reports/latest
else
	-$(MAKE) --no-print-directory e2e TARGET=kind PARALLEL=$(E2E_KIND_PARALLEL) KWC_FLAGS="--kwc.config=$(CURDIR)/fixtures/configs/decoy-kata.yaml $(KWC_FLAGS)"
	$(GO) run ./cmd/kwc gate --policy fixtures/policies/decoy-kata.yaml reports/latest
endif

## e2e-list: show the specs and labels a LABELS filter selects, without running them.
e2e-list:
	$(GINKGO) --dry-run -v --tags=e2e $(if $(LABELS),--label-filter='$(LABELS)') ./e2e -- --kwc.target=docker $(KWC_FLAGS)

## kube-tools: build the API tests' kube-apiserver and etcd from source, static and
## versioned (cached in .cache/bin/node, where the node image finds them too).
kube-tools:
	@hack/kube-tools.sh

## node-binaries: what kwc's kind node image holds that is built here: the rest of
## Kubernetes (kubeadm, kubelet, kubectl, controller manager, scheduler) and containerd.
node-binaries:
	@hack/kube-tools.sh --node
	@hack/containerd.sh

## node-image: kwc's offline kind node image (Debian bookworm, containerd 2.x, kubeadm,
## kubelet and the control-plane images at client-go's version, all built here), into
## the engine DOCKER_HOST names; prints its reference. About 15 minutes cold. The kind
## target builds it itself with kindCluster.nodeImage: offline.
node-image: node-binaries
	$(GO) run ./cmd/kwc node-image

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
## context (median under 1.5 s is the target), then the docker-target and kind-target
## lanes serial and in PARALLEL processes: phases side by side, the ratio, and a
## failure if any verdict differs between the two.
bench: kube-tools node-binaries runsc
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
test: deps vet kube-tools node-binaries runsc
	@set -euo pipefail; \
	if ! docker version >/dev/null 2>&1; then \
	  eval "$$(hack/engine.sh start)"; trap 'hack/engine.sh stop' EXIT; \
	fi; \
	$(GO) test ./...; \
	$(MAKE) --no-print-directory fuzz; \
	$(MAKE) --no-print-directory e2e TARGET=docker; \
	$(GO) run ./cmd/kwc report --check-browser reports/latest; \
	$(GO) run ./cmd/kwc gate --policy fixtures/policies/runc-local.yaml reports/latest; \
	$(GO) run ./cmd/kwc gate --policy fixtures/policies/sandbox-local.yaml reports/latest; \
	$(MAKE) --no-print-directory calibrate CALIBRATE_FLAGS=--into-latest; \
	$(MAKE) --no-print-directory chaos CHAOS_RUNS=2; \
	$(MAKE) --no-print-directory e2e TARGET=docker KWC_FLAGS="--kwc.config $(CURDIR)/fixtures/configs/corpus.yaml"; \
	$(GO) run ./cmd/kwc gate --policy fixtures/policies/corpus.yaml reports/latest; \
	$(MAKE) --no-print-directory e2e-kind; \
	$(GO) run ./cmd/kwc report --check-browser reports/latest; \
	$(MAKE) --no-print-directory e2e-kind DECOY=1

engine-start:
	@hack/engine.sh start
engine-stop:
	@hack/engine.sh stop
