package emulator

import (
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/api"
)

// This file drives the emulator from the action table (internal/api, derived from the generated
// descriptors of package qingcloud.iaas.v1, themselves generated from the official Swagger specs):
// every action there is known, and its required parameters and scalar types are checked for modeled
// and unmodeled actions alike, by the emulator's own code. An action that is not modeled is answered
// from the generic store (store.go).

// specAction is what the descriptors say about one action.
type specAction struct {
	name    string
	in, out protoreflect.MessageDescriptor
	noZone  bool // the request has no zone field
	jobID   bool // the response has job_id (a delayed action)
	jobIDs  bool // the response has job_ids
}

// specActions returns the actions of the action table (internal/api) by name.
var specActions = sync.OnceValue(func() map[string]*specAction {
	out := map[string]*specAction{}
	for _, name := range api.Actions() {
		m := api.ByAction(name)
		sa := &specAction{name: name, in: m.Input.Descriptor(), out: m.Output.Descriptor()}
		sa.noZone = sa.in.Fields().ByName("zone") == nil
		sa.jobID = sa.out.Fields().ByName("job_id") != nil
		sa.jobIDs = sa.out.Fields().ByName("job_ids") != nil
		out[name] = sa
	}
	return out
})

// SpecActions returns the names of every action of the generated descriptors, sorted.
func SpecActions() []string {
	m := specActions()
	out := make([]string, 0, len(m))
	for name := range m {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// validate checks required parameters (1100 naming the first missing one, in field order) and
// the syntax of scalar values (1100 when an integer, number or boolean does not parse).
func (sa *specAction) validate(params map[string]string) *apiError {
	return validateMessage(sa.in, "", params, true)
}

func validateMessage(md protoreflect.MessageDescriptor, prefix string, params map[string]string, top bool) *apiError {
	fields := md.Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		name := prefix + api.WireName(fd)
		switch {
		case fd.IsMap():
			continue
		case fd.IsList() && fd.Kind() == protoreflect.MessageKind:
			idx := listIndexes(params, name, true)
			if top && api.IsRequired(fd) && len(idx) == 0 {
				return errMissing(name + ".1")
			}
			if isStruct(fd.Message()) {
				continue
			}
			for _, n := range idx {
				if err := validateMessage(fd.Message(), name+"."+n+".", params, false); err != nil {
					return err
				}
			}
		case fd.IsList():
			idx := listIndexes(params, name, false)
			if top && api.IsRequired(fd) && len(idx) == 0 {
				return errMissing(name + ".1")
			}
			for _, n := range idx {
				key := name + "." + n
				if err := checkScalar(fd, key, params[key]); err != nil {
					return err
				}
			}
		case fd.Kind() == protoreflect.MessageKind:
			// A nested object is sent as JSON text (or flattened); only presence is checked.
			if top && api.IsRequired(fd) && params[name] == "" && len(listIndexes(params, name, true)) == 0 {
				return errMissing(name)
			}
		default:
			v, ok := params[name]
			if top && api.IsRequired(fd) && strings.TrimSpace(v) == "" {
				return errMissing(name)
			}
			if ok {
				if err := checkScalar(fd, name, v); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func isStruct(md protoreflect.MessageDescriptor) bool {
	return md.FullName() == "google.protobuf.Struct"
}

// listIndexes returns the N of the present name.N (or name.N.field when nested) parameters.
func listIndexes(params map[string]string, name string, nested bool) []string {
	prefix := name + "."
	seen := map[string]bool{}
	var out []string
	for k := range params {
		rest, ok := strings.CutPrefix(k, prefix)
		if !ok {
			continue
		}
		n, field, hasField := strings.Cut(rest, ".")
		if hasField != nested || (nested && field == "") {
			continue
		}
		if _, err := strconv.Atoi(n); err != nil || seen[n] {
			continue
		}
		seen[n] = true
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { a, _ := strconv.Atoi(out[i]); b, _ := strconv.Atoi(out[j]); return a < b })
	return out
}

// checkScalar checks the syntax of one scalar value; empty values mean "unset".
func checkScalar(fd protoreflect.FieldDescriptor, key, v string) *apiError {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil
	}
	var err error
	what := ""
	switch fd.Kind() {
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		_, err = strconv.ParseInt(v, 10, 32)
		what = "an integer"
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		_, err = strconv.ParseInt(v, 10, 64)
		what = "an integer"
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		_, err = strconv.ParseUint(v, 10, 32)
		what = "a non-negative integer"
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		_, err = strconv.ParseUint(v, 10, 64)
		what = "a non-negative integer"
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		_, err = strconv.ParseFloat(v, 64)
		what = "a number"
	case protoreflect.BoolKind:
		switch strings.ToLower(v) {
		case "0", "1", "true", "false":
		default:
			return errInvalid("parameter [%s] should be 0 or 1, got [%s]", key, clip(v))
		}
	case protoreflect.EnumKind:
		if fd.Enum().Values().ByName(protoreflect.Name(v)) == nil {
			if n, perr := strconv.Atoi(v); perr != nil || fd.Enum().Values().ByNumber(protoreflect.EnumNumber(n)) == nil {
				return errInvalid("parameter [%s] has an unknown value [%s]", key, clip(v))
			}
		}
	}
	if err != nil {
		return errInvalid("parameter [%s] should be %s, got [%s]", key, what, clip(v))
	}
	return nil
}

// requestIDs collects the values of the required string parameters that name resources (lists, a
// kind's name, *_id, resource), for the job's resource_ids.
func requestIDs(sa *specAction, params map[string]string) []string {
	var out []string
	fields := sa.in.Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		name := api.WireName(fd)
		if fd.Kind() != protoreflect.StringKind || !api.IsRequired(fd) || name == "zone" ||
			!fd.IsList() && !kindNames()[name] && !strings.HasSuffix(name, "_id") && name != "resource" {
			continue
		}
		if fd.IsList() {
			for _, n := range listIndexes(params, name, false) {
				if v := strings.TrimSpace(params[name+"."+n]); !slices.Contains(out, v) { // once, as r.list
					out = append(out, v)
				}
			}
		} else if v := strings.TrimSpace(params[name]); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// kindNames are the names of the kinds of resources of the descriptors.
var kindNames = sync.OnceValue(func() map[string]bool {
	out := map[string]bool{}
	for _, k := range api.ResourceKinds() {
		out[k.Name] = true
	}
	return out
})
