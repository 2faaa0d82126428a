package capability

import (
	"os"
	"path/filepath"
	"testing"
)

func TestReadStatusAndNames(t *testing.T) {
	p := filepath.Join(t.TempDir(), "status")
	body := "Name:\tx\nCapInh:\t0000000000000000\nCapPrm:\t0000000000000003\nCapEff:\t0000000000000003\nCapBnd:\t000001fffeffffff\nCapAmb:\t0000000000000000\n"
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := ReadStatus(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := NamesOf(s.Eff); len(got) != 2 || got[0] != "CAP_CHOWN" || got[1] != "CAP_DAC_OVERRIDE" {
		t.Fatalf("%v", got)
	}
	if missing := NamesOf(uint64(0x1ffffffffff) &^ s.Bnd); len(missing) != 1 || missing[0] != "CAP_SYS_RESOURCE" {
		t.Fatalf("bit 24 is CAP_SYS_RESOURCE, got %v", missing)
	}
}

func TestFullFollowsTheKernel(t *testing.T) {
	if Full()&(1<<LastCap()) == 0 || Full()>>(LastCap()+1) != 0 {
		t.Fatalf("Full %x does not match cap_last_cap %d", Full(), LastCap())
	}
}
