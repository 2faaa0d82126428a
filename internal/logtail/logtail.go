// Package logtail cuts command and log output down to what an error message can
// carry: the last lines, indented under the message.
package logtail

import "strings"

// Last returns the last n lines of s, without trailing blank space.
func Last(s string, n int) string {
	s = strings.TrimRight(s, " \t\r\n")
	if s == "" {
		return ""
	}
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Indent puts prefix before every line of s; an empty s stays empty.
func Indent(s, prefix string) string {
	if s == "" {
		return ""
	}
	return prefix + strings.ReplaceAll(s, "\n", "\n"+prefix)
}
