package runid

import (
	"strings"
	"testing"
)

func TestNewIsValid(t *testing.T) {
	for range 100 {
		if id := New(); !Valid(id) {
			t.Fatalf("New() = %q is not valid", id)
		}
	}
}

func TestHostileIDsAreRejected(t *testing.T) {
	for _, id := range []string{"", "..", "../../..", "/", "*", "?", "[a-f]", "abc", "abcdefg", "ABCDEF", "abcde\n",
		"ab/cde", "abc def", strings.Repeat("a", 4096), "abcdef\x00", "-abcde"} {
		if Valid(id) || Check(id) == nil {
			t.Errorf("%q was accepted as a run id", id)
		}
	}
}
