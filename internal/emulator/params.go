package emulator

import (
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// request is one authenticated API call as seen by an action handler.
type request struct {
	action string
	params map[string]string
	keyID  string
	now    time.Time // taken under the account lock
	zone   string    // the zone parameter ("" for actions without zone)
	zones  []string  // zone ids the zone parameter covers (a region alias covers several)
	faults Faults
	lists  map[string][]string  // list's answers by name (params never change)
	shares map[shareKey]*object // shared's objects
}

// shareKey names an object of shared: what it renders (its kind) and the id it renders.
type shareKey struct{ kind, id string }

// shared returns the object under key, made by mk the first time this request asks for it: the
// parts of an answer that many of its items hold alike (the image of a page of instances). The
// object must not change once made.
func (r *request) shared(key shareKey, mk func() *object) *object {
	if o, ok := r.shares[key]; ok {
		return o
	}
	if r.shares == nil {
		r.shares = map[shareKey]*object{}
	}
	o := mk()
	r.shares[key] = o
	return o
}

// str returns a parameter value, "" when absent.
func (r *request) str(name string) string { return r.params[name] }

// has reports whether a parameter is present (possibly empty).
func (r *request) has(name string) bool { _, ok := r.params[name]; return ok }

// required returns a non-empty parameter or 1100 naming it.
func (r *request) required(name string) (string, *apiError) {
	v := strings.TrimSpace(r.params[name])
	if v == "" {
		return "", errMissing(name)
	}
	return v, nil
}

// integer returns an integer parameter, def when absent or empty, and 1100 when it does not parse.
func (r *request) integer(name string, def int) (int, *apiError) {
	v, ok := r.params[name]
	if !ok || strings.TrimSpace(v) == "" {
		return def, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return 0, errInvalid("parameter [%s] should be an integer, got [%s]", name, clip(v))
	}
	return n, nil
}

// requiredInt returns a required integer parameter.
func (r *request) requiredInt(name string) (int, *apiError) {
	if _, err := r.required(name); err != nil {
		return 0, err
	}
	return r.integer(name, 0)
}

// flag returns a 0/1 parameter (also accepting true/false).
func (r *request) flag(name string) (bool, *apiError) {
	switch strings.ToLower(strings.TrimSpace(r.params[name])) {
	case "", "0", "false":
		return false, nil
	case "1", "true":
		return true, nil
	}
	return false, errInvalid("parameter [%s] should be 0 or 1, got [%s]", name, clip(r.params[name]))
}

// oneOf checks that an optional parameter, if present, is one of allowed.
func (r *request) oneOf(name, def string, allowed ...string) (string, *apiError) {
	v := strings.TrimSpace(r.params[name])
	if v == "" {
		return def, nil
	}
	for _, a := range allowed {
		if v == a {
			return v, nil
		}
	}
	return "", errInvalid("parameter [%s] should be one of %v, got [%s]", name, allowed, clip(v))
}

// list returns the values of name.1, name.2, ... in index order (any integer index is accepted;
// empty values are skipped).
func (r *request) list(name string) []string {
	if l, ok := r.lists[name]; ok {
		return slices.Clone(l)
	}
	l := r.parseList(name)
	if r.lists == nil {
		r.lists = map[string][]string{}
	}
	r.lists[name] = l
	return slices.Clone(l)
}

// parseList returns the values of name.1, name.2, ... as list does.
func (r *request) parseList(name string) []string {
	prefix := name + "."
	type entry struct {
		i int
		v string
	}
	var entries []entry
	for k, v := range r.params {
		rest, ok := strings.CutPrefix(k, prefix)
		if !ok {
			continue
		}
		i, err := strconv.Atoi(rest)
		if err != nil {
			continue
		}
		if v = strings.TrimSpace(v); v != "" {
			entries = append(entries, entry{i, v})
		}
	}
	sort.Slice(entries, func(a, b int) bool { return entries[a].i < entries[b].i })
	out := make([]string, 0, len(entries))
	seen := make(map[string]bool, len(entries))
	for _, e := range entries {
		if !seen[e.v] {
			seen[e.v] = true
			out = append(out, e.v)
		}
	}
	return out
}

// requiredList returns a non-empty list or 1100 naming it.
func (r *request) requiredList(name string) ([]string, *apiError) {
	l := r.list(name)
	if len(l) == 0 {
		return nil, errMissing(name + ".1")
	}
	return l, nil
}

// objects returns the objects of name.N.field parameters in index order.
func (r *request) objects(name string) []map[string]string {
	prefix := name + "."
	byIndex := make(map[int]map[string]string)
	for k, v := range r.params {
		rest, ok := strings.CutPrefix(k, prefix)
		if !ok {
			continue
		}
		idx, field, ok := strings.Cut(rest, ".")
		if !ok || field == "" {
			continue
		}
		i, err := strconv.Atoi(idx)
		if err != nil {
			continue
		}
		m := byIndex[i]
		if m == nil {
			m = make(map[string]string)
			byIndex[i] = m
		}
		m[field] = v
	}
	idx := make([]int, 0, len(byIndex))
	for i := range byIndex {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	out := make([]map[string]string, 0, len(idx))
	for _, i := range idx {
		out = append(out, byIndex[i])
	}
	return out
}

// objInt parses an integer field of an object parameter.
func objInt(obj map[string]string, name, field string, def int) (int, *apiError) {
	v := strings.TrimSpace(obj[field])
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, errInvalid("parameter [%s.N.%s] should be an integer, got [%s]", name, field, clip(v))
	}
	return n, nil
}

// count parses the optional count parameter of a create action (1..maxCount).
func (r *request) count() (int, *apiError) {
	n, err := r.integer("count", 1)
	if err != nil {
		return 0, err
	}
	if n < 1 || n > maxCount {
		return 0, errInvalid("parameter [count] should be between 1 and %d, got [%d]", maxCount, n)
	}
	return n, nil
}

// maxCount bounds the count parameter of create actions.
const maxCount = 1000

// searchMatch reports whether search_word (if given) matches the id or name, case-insensitively.
func (r *request) searchMatch(fields ...string) bool {
	w := strings.ToLower(strings.TrimSpace(r.str("search_word")))
	if w == "" {
		return true
	}
	for _, f := range fields {
		if strings.Contains(strings.ToLower(f), w) {
			return true
		}
	}
	return false
}

// inZone reports whether zone is covered by the request's zone parameter.
func (r *request) inZone(zone string) bool {
	for _, z := range r.zones {
		if z == zone {
			return true
		}
	}
	return false
}

// idFilter returns a membership test for an optional list filter (nil list: everything matches).
func idFilter(ids []string) func(string) bool {
	if len(ids) == 0 {
		return func(string) bool { return true }
	}
	set := make(map[string]bool, len(ids))
	for _, id := range ids {
		set[id] = true
	}
	return func(s string) bool { return set[s] }
}
