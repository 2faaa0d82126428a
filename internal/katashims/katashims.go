// Package katashims is the table of kata-deploy's shims (chart 4.3.0, x86_64) and
// whether each can run on a plain KVM host: the default Kata lanes are the runnable
// ones, and every shim left out carries the reason a plan or report prints.
package katashims

import "slices"

// Runtime is the Kata runtime a shim belongs to.
type Runtime string

const (
	// RuntimeRust is runtime-rs, Kata's default runtime since 4.0.
	RuntimeRust Runtime = "runtime-rs"
	// RuntimeGo is the Go runtime, deprecated since 4.0 and still shipped.
	RuntimeGo Runtime = "go"
)

// Shim is one shim of kata-deploy's chart.
type Shim struct {
	Name       string
	Hypervisor string
	Runtime    Runtime
	// PlainKVM says whether the shim runs with nothing but /dev/kvm, vhost-vsock and
	// the chart's own artifacts on the node.
	PlainKVM bool
	// Why is what keeps a shim off a plain KVM host, or, for a runnable shim, what a
	// reader should know about it.
	Why string
}

// DefaultShim is kata-deploy's defaultShim on every architecture since 4.0 (it was
// qemu on amd64 up to 3.32).
const DefaultShim = "qemu-runtime-rs"

// Table lists kata-deploy 4.3.0's shims. Source: the chart's values.yaml (shims.*,
// defaultShim) and the Kata 4.x release notes; re-check on every version bump.
var Table = []Shim{
	{Name: "qemu-runtime-rs", Hypervisor: "qemu", Runtime: RuntimeRust, PlainKVM: true, Why: "the chart's defaultShim"},
	{Name: "qemu", Hypervisor: "qemu", Runtime: RuntimeGo, PlainKVM: true, Why: "Go runtime, deprecated since 4.0"},
	{Name: "clh-runtime-rs", Hypervisor: "cloud-hypervisor", Runtime: RuntimeRust, PlainKVM: true},
	{Name: "clh", Hypervisor: "cloud-hypervisor", Runtime: RuntimeGo, PlainKVM: true, Why: "Go runtime, deprecated since 4.0"},
	{Name: "dragonball", Hypervisor: "dragonball", Runtime: RuntimeRust, PlainKVM: true, Why: "runtime-rs with its built-in VMM"},
	{Name: "fc", Hypervisor: "firecracker", Runtime: RuntimeGo, Why: "kata-deploy sets the devmapper snapshotter for it, which \"requires pre-configuration on the user side\" (a thin pool on every node); no runtime-rs shim exists. Name it in kata.shims once the nodes have one"},
	{Name: "clh-azure", Hypervisor: "cloud-hypervisor", Runtime: RuntimeGo, Why: "Cloud Hypervisor built for Azure hosts, not a plain KVM host"},
	{Name: "clh-azure-runtime-rs", Hypervisor: "cloud-hypervisor", Runtime: RuntimeRust, Why: "Cloud Hypervisor built for Azure hosts, not a plain KVM host"},
	{Name: "openvmm-azure-runtime-rs", Hypervisor: "openvmm", Runtime: RuntimeRust, Why: "OpenVMM on Azure hosts, not a plain KVM host"},
	{Name: "qemu-nvidia-cpu", Hypervisor: "qemu", Runtime: RuntimeGo, Why: "NVIDIA's guest stack for GPU nodes"},
	{Name: "qemu-nvidia-cpu-runtime-rs", Hypervisor: "qemu", Runtime: RuntimeRust, Why: "NVIDIA's guest stack for GPU nodes"},
	{Name: "qemu-nvidia-gpu", Hypervisor: "qemu", Runtime: RuntimeGo, Why: "needs an NVIDIA GPU passed through to the guest"},
	{Name: "qemu-nvidia-gpu-runtime-rs", Hypervisor: "qemu", Runtime: RuntimeRust, Why: "needs an NVIDIA GPU passed through to the guest"},
	{Name: "qemu-nvidia-gpu-snp", Hypervisor: "qemu", Runtime: RuntimeGo, Why: "needs an NVIDIA GPU and AMD SEV-SNP hardware"},
	{Name: "qemu-nvidia-gpu-snp-runtime-rs", Hypervisor: "qemu", Runtime: RuntimeRust, Why: "needs an NVIDIA GPU and AMD SEV-SNP hardware"},
	{Name: "qemu-nvidia-gpu-tdx", Hypervisor: "qemu", Runtime: RuntimeGo, Why: "needs an NVIDIA GPU and Intel TDX hardware"},
	{Name: "qemu-nvidia-gpu-tdx-runtime-rs", Hypervisor: "qemu", Runtime: RuntimeRust, Why: "needs an NVIDIA GPU and Intel TDX hardware"},
	{Name: "qemu-snp", Hypervisor: "qemu", Runtime: RuntimeGo, Why: "needs AMD SEV-SNP hardware (and the nydus snapshotter for guest pull)"},
	{Name: "qemu-snp-runtime-rs", Hypervisor: "qemu", Runtime: RuntimeRust, Why: "needs AMD SEV-SNP hardware (and the nydus snapshotter for guest pull)"},
	{Name: "qemu-tdx", Hypervisor: "qemu", Runtime: RuntimeGo, Why: "needs Intel TDX hardware (and the nydus snapshotter for guest pull)"},
	{Name: "qemu-tdx-runtime-rs", Hypervisor: "qemu", Runtime: RuntimeRust, Why: "needs Intel TDX hardware (and the nydus snapshotter for guest pull)"},
	{Name: "qemu-se", Hypervisor: "qemu", Runtime: RuntimeGo, Why: "IBM Secure Execution, s390x only"},
	{Name: "qemu-se-runtime-rs", Hypervisor: "qemu", Runtime: RuntimeRust, Why: "IBM Secure Execution, s390x only"},
	{Name: "qemu-coco-dev", Hypervisor: "qemu", Runtime: RuntimeGo, Why: "Confidential Containers development flavour: images are pulled in the guest through the nydus snapshotter, which kwc does not set up"},
	{Name: "qemu-coco-dev-runtime-rs", Hypervisor: "qemu", Runtime: RuntimeRust, Why: "Confidential Containers development flavour: images are pulled in the guest through the nydus snapshotter, which kwc does not set up"},
	{Name: "remote", Hypervisor: "peer pods", Runtime: RuntimeGo, Why: "peer pods: the VM runs in a cloud through cloud-api-adaptor, not on the node"},
}

// Lookup finds a shim by name.
func Lookup(name string) (Shim, bool) {
	i := slices.IndexFunc(Table, func(s Shim) bool { return s.Name == name })
	if i < 0 {
		return Shim{}, false
	}
	return Table[i], true
}

// Names lists every shim the chart ships.
func Names() []string {
	out := make([]string, 0, len(Table))
	for _, s := range Table {
		out = append(out, s.Name)
	}
	return out
}

// PlainKVM lists the shims a plain KVM host can run, the default Kata lanes, in
// table order (the chart's default first).
func PlainKVM() []string {
	var out []string
	for _, s := range Table {
		if s.PlainKVM {
			out = append(out, s.Name)
		}
	}
	return out
}

// WhyLeftOut is what a plan or a report says of a shim the run does not test.
func (s Shim) WhyLeftOut() string {
	if s.PlainKVM {
		return "runs on a plain KVM host; not in kata.shims"
	}
	return s.Why
}

// LeftOut lists the shims not chosen, each with why, for a plan or a report.
func LeftOut(chosen []string) []Shim {
	var out []Shim
	for _, s := range Table {
		if !slices.Contains(chosen, s.Name) {
			out = append(out, s)
		}
	}
	return out
}
