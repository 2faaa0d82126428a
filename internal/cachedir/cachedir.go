// Package cachedir says where kwc keeps slow, reusable inputs (the Debian base
// tarball, built tools), so the CLI and the suite find the same cache.
package cachedir

import (
	"os"
	"path/filepath"
)

// Path is $KWC_CACHE_DIR, else .cache at the repository root (the suite runs in e2e/),
// else a folder in the temporary directory.
func Path() string {
	if d := os.Getenv("KWC_CACHE_DIR"); d != "" {
		return d
	}
	if wd, err := os.Getwd(); err == nil {
		if filepath.Base(wd) == "e2e" {
			wd = filepath.Dir(wd)
		}
		return filepath.Join(wd, ".cache")
	}
	return filepath.Join(os.TempDir(), "kwc-cache")
}
