// Package kataversion reads and orders Kata Containers release versions
// (major.minor.patch, with an optional leading v and -suffix), for the version floor,
// the chart's value layout and the advisories' fixed releases.
package kataversion

import (
	"fmt"
	"strconv"
	"strings"
)

// Version is major, minor, patch.
type Version [3]int

// Parse reads a release version; anything but three numeric parts is an error.
func Parse(s string) (Version, error) {
	var v Version
	parts := strings.SplitN(strings.TrimPrefix(strings.TrimSpace(s), "v"), ".", 3)
	if len(parts) != 3 {
		return v, fmt.Errorf("kata version %q is not major.minor.patch", s)
	}
	for i, p := range parts {
		p, _, _ = strings.Cut(p, "-")
		n, err := strconv.Atoi(p)
		if err != nil {
			return v, fmt.Errorf("kata version %q: %w", s, err)
		}
		v[i] = n
	}
	return v, nil
}

// MustParse is Parse for versions written in code.
func MustParse(s string) Version {
	v, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return v
}

// Less orders versions.
func (v Version) Less(o Version) bool {
	for i := range v {
		if v[i] != o[i] {
			return v[i] < o[i]
		}
	}
	return false
}

// AtLeast is !Less.
func (v Version) AtLeast(o Version) bool { return !v.Less(o) }

func (v Version) String() string { return fmt.Sprintf("%d.%d.%d", v[0], v[1], v[2]) }
