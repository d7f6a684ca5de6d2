package emulator_test

import (
	"slices"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/api"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/emulator"
)

// registryAction is an action of the generated descriptors, read independently of the emulator.
type registryAction struct {
	name    string
	in, out protoreflect.MessageDescriptor
}

func registryActions(t *testing.T) map[string]registryAction {
	t.Helper()
	out := map[string]registryAction{}
	protoregistry.GlobalFiles.RangeFilesByPackage("qingcloud.iaas.v1", func(fd protoreflect.FileDescriptor) bool {
		for i := 0; i < fd.Services().Len(); i++ {
			for j := 0; j < fd.Services().Get(i).Methods().Len(); j++ {
				m := fd.Services().Get(i).Methods().Get(j)
				a, _ := proto.GetExtension(m.Options(), iaasv1.E_Action).(*iaasv1.Action)
				if a.GetName() != "" && a.GetItemField() == "" {
					out[a.GetName()] = registryAction{a.GetName(), m.Input(), m.Output()}
				}
			}
		}
		return true
	})
	if len(out) < 261 {
		t.Fatalf("registry has %d actions, want all 261 spec actions", len(out))
	}
	return out
}

func required(fd protoreflect.FieldDescriptor) bool {
	b, _ := proto.GetExtension(fd.Options(), annotations.E_FieldBehavior).([]annotations.FieldBehavior)
	return slices.Contains(b, annotations.FieldBehavior_REQUIRED)
}

func fieldWireName(fd protoreflect.FieldDescriptor) string {
	if n, _ := proto.GetExtension(fd.Options(), iaasv1.E_WireName).(string); n != "" {
		return n
	}
	return string(fd.Name())
}

// scalarSample is a valid wire value for a scalar field.
func scalarSample(fd protoreflect.FieldDescriptor) string {
	switch fd.Kind() {
	case protoreflect.StringKind, protoreflect.BytesKind:
		return "x-sample1"
	case protoreflect.BoolKind:
		return "1"
	case protoreflect.EnumKind:
		return string(fd.Enum().Values().Get(0).Name())
	}
	return "1"
}

// minimal returns key/value pairs with every required field of md set (zone included).
func minimal(md protoreflect.MessageDescriptor) []string {
	var kv []string
	for i := 0; i < md.Fields().Len(); i++ {
		fd := md.Fields().Get(i)
		if !required(fd) || fd.Name() == "zone" {
			continue
		}
		name := fieldWireName(fd)
		switch {
		case fd.IsList() && fd.Kind() == protoreflect.MessageKind:
			sub := fd.Message().Fields()
			for k := 0; k < sub.Len(); k++ {
				if sf := sub.Get(k); !sf.IsList() && sf.Kind() != protoreflect.MessageKind {
					kv = append(kv, name+".1."+fieldWireName(sf), scalarSample(sf))
				}
			}
		case fd.IsList():
			kv = append(kv, name+".1", scalarSample(fd))
		case fd.Kind() == protoreflect.MessageKind:
			kv = append(kv, name, "{}")
		default:
			kv = append(kv, name, scalarSample(fd))
		}
	}
	return kv
}

// TestSpecFallback sends a valid request (resources it names made first) for every action of the
// generated registry that no handler models, and checks a ret_code-0, schema-shaped answer from the
// generic store, with a job that runs to successful for delayed actions.
func TestSpecFallback(t *testing.T) {
	f := newFixture(t, nil)
	reg := registryActions(t)
	modeled := emulator.ModeledActions()
	if got := emulator.SpecActions(); len(got) != len(reg) {
		t.Fatalf("emulator knows %d spec actions, registry has %d", len(got), len(reg))
	}
	for _, name := range modeled {
		if _, ok := reg[name]; !ok {
			t.Errorf("modeled action %s is not in the registry", name)
		}
	}
	kinds := map[string]api.ResourceKind{}
	for _, k := range api.ResourceKinds() {
		if _, dup := kinds[k.Name]; !dup {
			kinds[k.Name] = k
		}
	}
	names := make([]string, 0, len(reg))
	for name := range reg {
		// A generic-store action that needs an item in a particular state (stateBound: a stopped load
		// balancer to start) is checked by the lifecycle test stateBound names.
		if !slices.Contains(modeled, name) && stateBound[name] == "" {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	var jobs []string
	for _, name := range names {
		ra := reg[name]
		it := &idTest{f: f, t: t, reg: reg, kinds: kinds, given: map[string]bool{}}
		out := it.call(name, ra, nil)
		if code(out) != 0 || out["action"] != name+"Response" {
			t.Errorf("%s: %v", name, out)
			continue
		}
		for i := 0; i < ra.out.Fields().Len(); i++ {
			fd := ra.out.Fields().Get(i)
			wn := fieldWireName(fd)
			switch {
			case wn == "total_count":
				if _, ok := out[wn].(float64); !ok {
					t.Errorf("%s: total_count %v", name, out[wn])
				}
			case wn == "job_id":
				id, _ := out[wn].(string)
				if !strings.HasPrefix(id, "j-") {
					t.Errorf("%s: job_id %v", name, out[wn])
				}
				jobs = append(jobs, id)
			case wn == "job_ids": // an object: resource id -> job id
				m, _ := out[wn].(map[string]any)
				if len(m) == 0 {
					t.Errorf("%s: job_ids %v", name, out[wn])
				}
				for _, id := range m {
					jobs = append(jobs, id.(string))
				}
			case fd.IsList():
				if _, ok := out[wn].([]any); !ok {
					t.Errorf("%s: %s = %v, want a list", name, wn, out[wn])
				}
			}
		}
	}
	t.Logf("%d modeled actions, %d answered by the generic store (%d with jobs)", len(modeled), len(names), len(jobs))
	if len(names) < 100 || len(jobs) < 40 {
		t.Fatalf("only %d unmodeled actions, %d jobs", len(names), len(jobs))
	}
	f.finish()
	for _, id := range jobs {
		if st := f.c.with(func(c *client) { c.zone = "" }).call("DescribeJobs", "zone", "pek3a", "jobs.1", id); num(st["total_count"]) != 1 ||
			set(t, st, "job_set")[0]["status"] != "successful" {
			t.Errorf("job %s: %v", id, st)
		}
	}
}

// TestSpecValidation checks, for every action of the registry (modeled or not), that a missing
// required parameter is 1100 naming it, and that a non-integer value of an integer field is 1100.
func TestSpecValidation(t *testing.T) {
	f := newFixture(t, nil)
	for name, ra := range registryActions(t) {
		c := f.c
		if ra.in.Fields().ByName("zone") == nil {
			c = f.c.with(func(c *client) { c.zone = "" })
		}
		kv := minimal(ra.in)
		if len(kv) > 0 {
			// Drop the first required parameter (and any others of the same list object).
			first := kv[0]
			base := first
			if i := strings.Index(first, ".1"); i >= 0 {
				base = first[:i]
			}
			var rest []string
			for i := 0; i < len(kv); i += 2 {
				if kv[i] != base && !strings.HasPrefix(kv[i], base+".") {
					rest = append(rest, kv[i], kv[i+1])
				}
			}
			out := c.call(name, rest...)
			if code(out) != 1100 || !strings.Contains(out["message"].(string), "["+base) {
				t.Errorf("%s without %s: %v", name, base, out)
			}
		}
		for i := 0; i < ra.in.Fields().Len(); i++ {
			fd := ra.in.Fields().Get(i)
			if fd.IsList() || (fd.Kind() != protoreflect.Int32Kind && fd.Kind() != protoreflect.Int64Kind) {
				continue
			}
			wn := fieldWireName(fd)
			args := append(slices.Clone(kv), wn, "twelve")
			out := c.call(name, args...)
			if code(out) != 1100 || !strings.Contains(out["message"].(string), "["+wn+"]") {
				t.Errorf("%s with %s=twelve: %v", name, wn, out)
			}
			break
		}
	}
}
