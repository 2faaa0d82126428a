// Package runid makes and checks the id that names everything one kwc run creates:
// containers, namespaces, kind clusters, canaries. Cleanup builds paths and patterns
// from ids, so only ids of this exact form are ever accepted.
package runid

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"regexp"
)

// Len is the number of hex digits in an id.
const Len = 6

var form = regexp.MustCompile(`^[0-9a-f]{6}$`)

// New returns a fresh random id.
func New() string {
	b := make([]byte, Len/2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Valid reports whether id has the form New makes.
func Valid(id string) bool { return form.MatchString(id) }

// Check returns an error that says what a run id looks like when id is not one.
func Check(id string) error {
	if Valid(id) {
		return nil
	}
	shown := id
	if len(shown) > 40 {
		shown = shown[:40] + "…"
	}
	return fmt.Errorf("%q is not a kwc run id: a run id is %d lowercase hex digits, as in a report folder's name (reports/<time>-<id>)", shown, Len)
}
