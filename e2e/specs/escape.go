package specs

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"kwc.dev/kwc/e2e/framework"
	"kwc.dev/kwc/internal/config"
	"kwc.dev/kwc/internal/target"
)

// EscapeSpecInput is what EscapeSpec needs.
type EscapeSpecInput struct {
	Suite     *framework.Suite
	Lane      config.Lane
	Workspace target.Workspace
}

// EscapeSpec tries to reach the host from the workspace.
func EscapeSpec(inputGetter func() EscapeSpecInput) {
	It("cannot reach anything planted on the host", framework.Label(framework.LabelEscape), func(ctx SpecContext) {
		in := inputGetter()
		Expect(in.Workspace).NotTo(BeNil(), "Invalid argument. input.Workspace can't be nil when calling EscapeSpec")
		Skip("escape probes are not wired in yet")
	})
}
