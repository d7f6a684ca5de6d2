package qcerr

import (
	"strconv"
	"unicode/utf8"
)

// MaxEcho bounds a piece of caller input (an action or parameter name, a value) quoted in an error
// message or a log line, so that a caller cannot make the server answer or log megabytes.
const MaxEcho = 64

// Clip returns s when it has at most max bytes, else its first max bytes (cut at a rune boundary)
// followed by "...(N bytes)", which says how long it was.
func Clip(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "...(" + strconv.Itoa(len(s)) + " bytes)"
}
