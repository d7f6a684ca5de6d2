package operations

import (
	"fmt"
	"slices"
	"strings"
)

// Job statuses as QingCloud spells them.
var jobStatuses = []string{"pending", "working", "successful", "failed", "done with failure"}

// terminalStatuses are the statuses of jobs that will not change any more.
var terminalStatuses = []string{"successful", "failed", "done with failure"}

// maxFilterLen bounds the filters we parse.
const maxFilterLen = 512

// Filter is a parsed ListOperations filter. Its syntax is a small subset of AIP-160: terms joined by
// AND, each `field = value` (or `field:value`), values bare or double-quoted:
//
//	status = working
//	status = "done with failure" AND zone = pek3b
//	done = false
//
// Fields: status (a job status; repeat the term joined by OR for several, e.g.
// `status = failed OR status = "done with failure"`), done (true: terminal jobs, false: running ones),
// zone (the zone to list; default the caller's).
type Filter struct {
	// Statuses restricts the job statuses; nil means any.
	Statuses []string
	// Zone is the zone to list; "" means the caller's default zone.
	Zone string
}

// ParseFilter parses a ListOperations filter; "" is no filter.
func ParseFilter(s string) (Filter, error) {
	var f Filter
	if len(s) > maxFilterLen {
		return f, fmt.Errorf("filter is %d bytes long; the most is %d", len(s), maxFilterLen)
	}
	toks, err := tokenize(s)
	if err != nil {
		return f, err
	}
	var done *bool
	statusSet := false
	for i := 0; i < len(toks); {
		// One clause: term (OR term)*, all on the same field.
		field, values, next, err := clause(toks, i)
		if err != nil {
			return f, err
		}
		switch field {
		case "status":
			if statusSet {
				return f, fmt.Errorf("filter names status twice joined by AND; join the statuses with OR")
			}
			statusSet = true
			for _, v := range values {
				v = strings.ToLower(v)
				if !slices.Contains(jobStatuses, v) {
					return f, fmt.Errorf("filter: status %q is not a job status (%s)", v, strings.Join(jobStatuses, ", "))
				}
				if !slices.Contains(f.Statuses, v) {
					f.Statuses = append(f.Statuses, v)
				}
			}
		case "done":
			if len(values) != 1 || done != nil {
				return f, fmt.Errorf("filter: give done once, as done = true or done = false")
			}
			var b bool
			switch strings.ToLower(values[0]) {
			case "true":
				b = true
			case "false":
			default:
				return f, fmt.Errorf("filter: done = %q; use true or false", values[0])
			}
			done = &b
		case "zone":
			if len(values) != 1 || f.Zone != "" {
				return f, fmt.Errorf("filter: give zone once, as zone = <zone id>")
			}
			if !validZone(values[0]) {
				return f, fmt.Errorf("filter: zone %q is not a zone id (lower-case letters and digits, e.g. pek3b)", values[0])
			}
			f.Zone = values[0]
		default:
			return f, fmt.Errorf("filter: unknown field %q; filter on status, done or zone", field)
		}
		i = next
		if i < len(toks) {
			if !strings.EqualFold(toks[i].text, "AND") || toks[i].quoted {
				return f, fmt.Errorf("filter: expected AND between terms, got %q", toks[i].text)
			}
			i++
			if i == len(toks) {
				return f, fmt.Errorf("filter ends with AND")
			}
		}
	}
	if done != nil {
		want := terminalStatuses
		if !*done {
			want = []string{"pending", "working"}
		}
		if f.Statuses == nil {
			f.Statuses = slices.Clone(want)
		} else {
			f.Statuses = slices.DeleteFunc(f.Statuses, func(s string) bool { return !slices.Contains(want, s) })
			if len(f.Statuses) == 0 {
				return f, fmt.Errorf("filter: no status matches both the status and the done terms")
			}
		}
	}
	return f, nil
}

// clause reads `field op value (OR field op value)*` from toks[i:], every term on the same field.
func clause(toks []token, i int) (field string, values []string, next int, err error) {
	for {
		if i+3 > len(toks) {
			return "", nil, 0, fmt.Errorf("filter: incomplete term; terms look like status = working")
		}
		name, op, val := toks[i], toks[i+1], toks[i+2]
		if name.quoted || op.quoted || (op.text != "=" && op.text != ":") {
			return "", nil, 0, fmt.Errorf("filter: expected field = value, got %q %q", name.text, op.text)
		}
		f := strings.ToLower(name.text)
		if field != "" && f != field {
			return "", nil, 0, fmt.Errorf("filter: OR joins terms on one field, got %s and %s", field, f)
		}
		field = f
		values = append(values, val.text)
		i += 3
		if i < len(toks) && !toks[i].quoted && strings.EqualFold(toks[i].text, "OR") {
			i++
			continue
		}
		return field, values, i, nil
	}
}

// token is a word, an operator or a quoted string of a filter.
type token struct {
	text   string
	quoted bool
}

// tokenize splits a filter into words, the operators = and :, and double-quoted strings (with \" and
// \\ escapes).
func tokenize(s string) ([]token, error) {
	var out []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '=' || c == ':':
			out = append(out, token{text: string(c)})
			i++
		case c == '"':
			var b strings.Builder
			j := i + 1
			for ; j < len(s) && s[j] != '"'; j++ {
				if s[j] == '\\' && j+1 < len(s) {
					j++
				}
				b.WriteByte(s[j])
			}
			if j >= len(s) {
				return nil, fmt.Errorf("filter: unterminated quoted string at byte %d", i)
			}
			out = append(out, token{text: b.String(), quoted: true})
			i = j + 1
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\r\n=:\"", rune(s[j])) {
				j++
			}
			out = append(out, token{text: s[i:j]})
			i = j
		}
	}
	return out, nil
}
