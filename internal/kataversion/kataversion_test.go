package kataversion

import "testing"

func TestParseAndOrder(t *testing.T) {
	for in, ok := range map[string]bool{"3.31.0": true, "v4.1.0": true, "3.31.1-rc1": true, "3.31": false, "": false, "latest": false} {
		if _, err := Parse(in); (err == nil) != ok {
			t.Errorf("Parse(%q): %v", in, err)
		}
	}
	if !MustParse("3.30.9").Less(MustParse("3.31.0")) || MustParse("4.0.0").Less(MustParse("3.31.0")) || !MustParse("3.31.0").AtLeast(MustParse("3.31.0")) {
		t.Fatal("ordering")
	}
	if !MustParse("3.4.0").Less(MustParse("3.31.0")) {
		t.Fatal("numeric, not lexical")
	}
}
