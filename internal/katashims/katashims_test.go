package katashims

import "testing"

func TestTableIsConsistent(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range Table {
		if seen[s.Name] {
			t.Errorf("%s listed twice", s.Name)
		}
		seen[s.Name] = true
		if !s.PlainKVM && s.Why == "" {
			t.Errorf("%s is left off plain KVM hosts without a reason", s.Name)
		}
		if s.Runtime != RuntimeRust && s.Runtime != RuntimeGo {
			t.Errorf("%s: runtime %q", s.Name, s.Runtime)
		}
	}
	if got := PlainKVM(); len(got) == 0 || got[0] != DefaultShim {
		t.Fatalf("the plain-KVM lanes %v must start with the chart's default %s", got, DefaultShim)
	}
	if s, ok := Lookup("fc"); !ok || s.PlainKVM {
		t.Error("fc needs a devmapper pool: it is not a plain-KVM default")
	}
	if _, ok := Lookup("acrn"); ok {
		t.Error("ACRN was removed from Kata in 3.10.0; the chart has no such shim")
	}
	left := LeftOut(PlainKVM())
	if len(left)+len(PlainKVM()) != len(Table) {
		t.Fatalf("LeftOut(%v) = %d shims", PlainKVM(), len(left))
	}
}
