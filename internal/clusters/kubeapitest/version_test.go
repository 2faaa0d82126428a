package kubeapitest

import (
	"os"
	"strings"
	"testing"
)

// The tools module builds the binaries Start runs: their versions must agree.
func TestToolsModulePinsTheHarnessVersion(t *testing.T) {
	b, err := os.ReadFile("../../../hack/tools/kube/go.mod")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "\tk8s.io/kubernetes "+Version+"\n") {
		t.Fatalf("hack/tools/kube/go.mod does not require k8s.io/kubernetes %s", Version)
	}
	if !strings.Contains(string(b), "replace k8s.io/client-go => k8s.io/client-go v0"+Version[2:]+"\n") {
		t.Fatalf("the staging replaces must match %s", Version)
	}
}
