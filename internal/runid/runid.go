// Package runid makes and checks the id that names everything one kwc run creates:
// containers, namespaces, kind clusters, canaries. Cleanup builds paths and patterns
// from ids, so only ids of this exact form are ever accepted.
package runid

import (
	"crypto/rand"
	"crypto/sha256"
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

// Shared is the run id every process of one parallel run derives alike from seed
// (something all of them share and no other run has, such as the pid and start time
// of the process that started them): they need it before they can talk to each
// other, since it names the run's workspaces and namespaces.
func Shared(seed string) string {
	sum := sha256.Sum256([]byte("kwc run " + seed))
	return hex.EncodeToString(sum[:Len/2])
}
