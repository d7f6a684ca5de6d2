package emulator_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/api"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/codec"
)

// clientSpellings are answer keys outside the descriptors that the emulator sends on purpose:
// QingCloud's clients read them although the spec spells the field otherwise.
var clientSpellings = map[string]string{
	"latest_snapshot_time": "clients read it; the spec spells it lastest_snapshot_time",
	"error_codes":          "the job of QingCloud's DescribeJobs documentation example has it; the spec does not",
}

// unknownKeys returns the paths of the keys of obj that name no field of md, recursively.
func unknownKeys(md protoreflect.MessageDescriptor, obj map[string]any, path string) []string {
	var out []string
	for k, v := range obj {
		fd := api.FieldByWireName(md, k)
		if fd == nil {
			if clientSpellings[k] == "" {
				out = append(out, path+k)
			}
			continue
		}
		if fd.Kind() != protoreflect.MessageKind || fd.IsMap() || strings.HasPrefix(string(fd.Message().FullName()), "google.protobuf.") {
			continue
		}
		switch v := v.(type) {
		case map[string]any:
			out = append(out, unknownKeys(fd.Message(), v, path+k+".")...)
		case []any:
			for _, el := range v {
				if o, ok := el.(map[string]any); ok {
					out = append(out, unknownKeys(fd.Message(), o, path+k+"[].")...)
				}
			}
		}
	}
	return out
}

// TestAnswersDecode decodes the answer of every action, modelled or answered by the generic store,
// with the facade's codec into the action's response message, in a world holding one resource of
// every kind first: no value may be skipped as mismatched, and no key may be unknown to the
// descriptors (but for clientSpellings). The Describe actions run first, on the populated world.
func TestAnswersDecode(t *testing.T) {
	f := newFixture(t, nil)
	reg := registryActions(t)
	kinds := map[string]api.ResourceKind{}
	for _, k := range api.ResourceKinds() {
		if _, dup := kinds[k.Name]; !dup {
			kinds[k.Name] = k
		}
	}
	world := &idTest{f: f, t: t, reg: reg, kinds: kinds, given: map[string]bool{}}
	for _, k := range kinds {
		world.make(k)
	}
	// Attach things so that relations show in the answers.
	inst, _ := makeModelled(f, "instance")
	vol, _ := makeModelled(f, "volume")
	eip, _ := makeModelled(f, "eip")
	f.c.ok("AttachVolumes", "volumes.1", vol, "instance", inst)
	f.c.ok("AssociateEip", "eip", eip, "instance", inst)
	f.finish()
	f.c.ok("CreateSnapshots", "resources.1", vol)
	f.finish()

	names := make([]string, 0, len(reg))
	for name := range reg {
		names = append(names, name)
	}
	readFirst := func(a string) bool { return api.ReadOnly(a) }
	slices.SortFunc(names, func(a, b string) int {
		if ra, rb := readFirst(a), readFirst(b); ra != rb {
			if ra {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	decoded, items := 0, 0
	for _, name := range names {
		ra := reg[name]
		out := world.call(name, ra, nil)
		if code(out) != 0 {
			continue // state-bound actions refused here are decoded by their lifecycle runs below
		}
		decoded++
		mt, err := protoregistry.GlobalTypes.FindMessageByName(ra.out.FullName())
		if err != nil {
			t.Fatal(err)
		}
		msg := mt.New().Interface()
		if err := codec.Decode(world.body, msg); err != nil {
			var mm *codec.MismatchError
			if errors.As(err, &mm) {
				t.Errorf("%s: %v", name, err)
			} else {
				t.Fatalf("%s: %v", name, err)
			}
		}
		var obj map[string]any
		if err := json.Unmarshal(world.body, &obj); err != nil {
			t.Fatal(err)
		}
		for _, v := range obj {
			if l, ok := v.([]any); ok && len(l) > 0 {
				if _, isObj := l[0].(map[string]any); isObj {
					items += len(l)
				}
			}
		}
		if unknown := unknownKeys(ra.out, obj, ""); len(unknown) > 0 {
			slices.Sort(unknown)
			t.Errorf("%s: keys unknown to %s: %v", name, ra.out.Name(), unknown)
		}
	}
	t.Logf("%d answers decoded, %d items in them", decoded, items)
	if decoded < 200 || items < 50 {
		t.Fatalf("only %d answers decoded with %d items", decoded, items)
	}
}
