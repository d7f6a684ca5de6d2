package emulator

import (
	"sort"
	"strconv"
	"strings"
	"sync"

	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
)

// This file drives the emulator from the generated descriptors of package qingcloud.iaas.v1
// (themselves generated from the official Swagger specs): every action there is known, its
// required parameters and scalar types are checked for modeled and unmodeled actions alike, and
// an action that is not modeled gets a schema-valid, empty answer (with a job when the action is
// delayed).

const specPackage = "qingcloud.iaas.v1"

// specAction is what the descriptors say about one action.
type specAction struct {
	name    string
	in, out protoreflect.MessageDescriptor
	noZone  bool // the request has no zone field
	jobID   bool // the response has job_id (a delayed action)
	jobIDs  bool // the response has job_ids
}

// specActions returns the actions of the registered descriptors by name.
var specActions = sync.OnceValue(func() map[string]*specAction {
	out := map[string]*specAction{}
	protoregistry.GlobalFiles.RangeFilesByPackage(specPackage, func(fd protoreflect.FileDescriptor) bool {
		svcs := fd.Services()
		for i := 0; i < svcs.Len(); i++ {
			methods := svcs.Get(i).Methods()
			for j := 0; j < methods.Len(); j++ {
				m := methods.Get(j)
				opt, _ := proto.GetExtension(m.Options(), iaasv1.E_Action).(*iaasv1.Action)
				if opt.GetName() == "" || opt.GetItemField() != "" || m.IsStreamingServer() || m.IsStreamingClient() {
					continue // not an action, or the streaming variant of one
				}
				if _, dup := out[opt.GetName()]; dup {
					continue
				}
				sa := &specAction{name: opt.GetName(), in: m.Input(), out: m.Output()}
				sa.noZone = sa.in.Fields().ByName("zone") == nil
				sa.jobID = sa.out.Fields().ByName("job_id") != nil
				sa.jobIDs = sa.out.Fields().ByName("job_ids") != nil
				out[sa.name] = sa
			}
		}
		return true
	})
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

// wireName is the QingCloud name of a field.
func wireName(fd protoreflect.FieldDescriptor) string {
	if n, _ := proto.GetExtension(fd.Options(), iaasv1.E_WireName).(string); n != "" {
		return n
	}
	return string(fd.Name())
}

func isRequired(fd protoreflect.FieldDescriptor) bool {
	behaviors, _ := proto.GetExtension(fd.Options(), annotations.E_FieldBehavior).([]annotations.FieldBehavior)
	for _, b := range behaviors {
		if b == annotations.FieldBehavior_REQUIRED {
			return true
		}
	}
	return false
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
		name := prefix + wireName(fd)
		switch {
		case fd.IsMap():
			continue
		case fd.IsList() && fd.Kind() == protoreflect.MessageKind:
			idx := listIndexes(params, name, true)
			if top && isRequired(fd) && len(idx) == 0 {
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
			if top && isRequired(fd) && len(idx) == 0 {
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
			if top && isRequired(fd) && params[name] == "" && len(listIndexes(params, name, true)) == 0 {
				return errMissing(name)
			}
		default:
			v, ok := params[name]
			if top && isRequired(fd) && strings.TrimSpace(v) == "" {
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

// fallbackAnswer answers an action that is not modeled: [] for every list (total_count 0), and a
// job that runs to completion for delayed actions. Nothing else changes.
func fallbackAnswer(a *account, r *request, sa *specAction) result {
	res := result{}
	fields := sa.out.Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		name := wireName(fd)
		switch {
		case name == "action" || name == "ret_code":
		case name == "total_count":
			res[name] = 0
		case fd.IsList():
			res[name] = []any{}
		}
	}
	if sa.jobID || sa.jobIDs {
		j := a.newJob(r, requestIDs(sa, r.params))
		if sa.jobID {
			res["job_id"] = j.id
		}
		if sa.jobIDs {
			res["job_ids"] = []string{j.id}
		}
	}
	return res
}

// requestIDs collects the values of the required string parameters (the resources a delayed
// action acts on), for the job's resource_ids.
func requestIDs(sa *specAction, params map[string]string) []string {
	var out []string
	fields := sa.in.Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if fd.Kind() != protoreflect.StringKind || !isRequired(fd) || fd.Name() == "zone" {
			continue
		}
		name := wireName(fd)
		if fd.IsList() {
			for _, n := range listIndexes(params, name, false) {
				out = append(out, strings.TrimSpace(params[name+"."+n]))
			}
		} else if v := strings.TrimSpace(params[name]); v != "" {
			out = append(out, v)
		}
	}
	return out
}
