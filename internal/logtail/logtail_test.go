package logtail

import "testing"

func TestLast(t *testing.T) {
	for in, want := range map[string]string{
		"":                  "",
		"\n\n":              "",
		"a\nb\nc\nd\n":      "b\nc\nd",
		"  indented\nnext ": "  indented\nnext",
	} {
		if got := Last(in, 3); got != want {
			t.Errorf("Last(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestIndent(t *testing.T) {
	if got := Indent("a\nb", "  "); got != "  a\n  b" {
		t.Fatalf("%q", got)
	}
	if Indent("", "  ") != "" {
		t.Fatal("empty stays empty")
	}
}
