package api_test

import (
	"net/url"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/api"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/api/naming"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/signer"
)

func TestTableConsistent(t *testing.T) {
	if err := api.Check(); err != nil {
		t.Fatal(err)
	}
	ms := api.Methods()
	if len(ms) < 200 {
		t.Fatalf("%d action RPCs, want the whole generated API", len(ms))
	}
	if !slices.IsSortedFunc(ms, func(a, b *api.Method) int { return strings.Compare(a.FullMethod, b.FullMethod) }) {
		t.Error("Methods are not sorted by full method")
	}
	unary := 0
	for _, m := range ms {
		if api.ByFullMethod(m.FullMethod) != m {
			t.Errorf("ByFullMethod(%s) is not the method", m.FullMethod)
		}
		if want := "/" + string(m.Desc.Parent().FullName()) + "/" + string(m.Desc.Name()); m.FullMethod != want {
			t.Errorf("FullMethod %s, want %s", m.FullMethod, want)
		}
		if m.Input.Descriptor() != m.Desc.Input() || m.Output.Descriptor() != m.Desc.Output() {
			t.Errorf("%s: message types do not match the descriptor", m.FullMethod)
		}
		// The generator sets read_only by the naming rule; the retry policy relies on the two agreeing.
		if m.ReadOnly != naming.ReadOnlyByName(m.Action) {
			t.Errorf("%s: read_only %v disagrees with the naming rule", m.FullMethod, m.ReadOnly)
		}
		if m.Streams() {
			if !m.Desc.IsStreamingServer() || api.ByAction(m.Action) == nil {
				t.Errorf("%s: paginating variant without server streaming or unary RPC", m.FullMethod)
			}
			continue
		}
		unary++
		if api.ByAction(m.Action) != m {
			t.Errorf("ByAction(%s) is not %s", m.Action, m.FullMethod)
		}
	}
	if got := len(api.Actions()); got != unary {
		t.Errorf("%d actions, want one per unary RPC (%d)", got, unary)
	}
	if api.ByAction("DescribeSomethingNew") != nil || api.ByFullMethod("/qingcloud.iaas.v1.CallService/Call") != nil {
		t.Error("lookups found RPCs that call no typed action")
	}
}

// TestTableMatchesOptions compares the table with the raw options of every RPC of the package, so
// that no RPC is left out and no flag is lost.
func TestTableMatchesOptions(t *testing.T) {
	n := 0
	protoregistry.GlobalFiles.RangeFilesByPackage(api.Package, func(fd protoreflect.FileDescriptor) bool {
		for i := 0; i < fd.Services().Len(); i++ {
			ms := fd.Services().Get(i).Methods()
			for j := 0; j < ms.Len(); j++ {
				md := ms.Get(j)
				full := "/" + string(md.Parent().FullName()) + "/" + string(md.Name())
				a, _ := proto.GetExtension(md.Options(), iaasv1.E_Action).(*iaasv1.Action)
				m := api.ByFullMethod(full)
				if a.GetName() == "" {
					if m != nil {
						t.Errorf("%s has no action option but is in the table", full)
					}
					continue
				}
				n++
				if m == nil {
					t.Errorf("%s (action %s) is missing", full, a.GetName())
					continue
				}
				if m.Desc != md || m.Action != a.GetName() || m.ReadOnly != a.GetReadOnly() || m.Post != a.GetPost() || m.ItemField != a.GetItemField() {
					t.Errorf("%s: %+v does not match option %v", full, m, a)
				}
			}
		}
		return true
	})
	if n != len(api.Methods()) {
		t.Errorf("%d RPCs with an action option, table has %d", n, len(api.Methods()))
	}
}

func TestKnownMethods(t *testing.T) {
	tests := []struct {
		full, action       string
		readOnly, post     bool
		itemField, in, out string
	}{
		{"/qingcloud.iaas.v1.InstanceService/DescribeInstances", "DescribeInstances", true, false, "", "DescribeInstancesRequest", "DescribeInstancesResponse"},
		{"/qingcloud.iaas.v1.InstanceService/DescribeInstancesAll", "DescribeInstances", true, false, "instance_set", "DescribeInstancesAllRequest", "DescribeInstancesAllResponse"},
		{"/qingcloud.iaas.v1.InstanceService/RunInstances", "RunInstances", false, false, "", "RunInstancesRequest", "RunInstancesResponse"},
		{"/qingcloud.iaas.v1.LoadBalancerService/CreateServerCertificate", "CreateServerCertificate", false, true, "", "CreateServerCertificateRequest", "CreateServerCertificateResponse"},
	}
	for _, tc := range tests {
		m := api.ByFullMethod(tc.full)
		if m == nil {
			t.Errorf("%s: not found", tc.full)
			continue
		}
		if m.Action != tc.action || m.ReadOnly != tc.readOnly || m.Post != tc.post || m.ItemField != tc.itemField ||
			string(m.Input.Descriptor().Name()) != tc.in || string(m.Output.Descriptor().Name()) != tc.out {
			t.Errorf("%s = %+v", tc.full, m)
		}
	}
	if m := api.ByAction("DescribeInstances"); m == nil || m.FullMethod != tests[0].full {
		t.Errorf("ByAction(DescribeInstances) = %v, want the unary RPC", m)
	}
}

func TestReadOnly(t *testing.T) {
	for action, want := range map[string]bool{
		"DescribeInstances": true, "DescribeJobs": true, "GetQuotaLeft": true, "GetMonitor": true,
		"RunInstances": false, "TerminateInstances": false, "ModifyInstanceAttributes": false,
		"DescribeSomethingNew": true, "GetSomethingNew": true, "CreateSomethingNew": false,
	} {
		if got := api.ReadOnly(action); got != want {
			t.Errorf("ReadOnly(%s) = %v, want %v", action, got, want)
		}
	}
}

func TestMetricsLabel(t *testing.T) {
	for action, want := range map[string]string{
		"DescribeInstances": "DescribeInstances", "RunInstances": "RunInstances",
		"DescribeSomethingNew": api.OtherAction, "": api.OtherAction, "DescribeInstancesAll": api.OtherAction,
		"describeinstances": api.OtherAction,
	} {
		if got := api.MetricsLabel(action); got != want {
			t.Errorf("MetricsLabel(%q) = %q, want %q", action, got, want)
		}
	}
	if api.OtherAction != "other" {
		t.Errorf("OtherAction = %q; dashboards query action=\"other\"", api.OtherAction)
	}
}

func TestFields(t *testing.T) {
	md := (&iaasv1.RdbParameters{}).ProtoReflect().Descriptor()
	skip := md.Fields().ByName("skip_slave_start")
	if skip == nil {
		t.Fatal("RdbParameters has no skip_slave_start")
	}
	if got := api.WireName(skip); got != "skip-slave-start" {
		t.Errorf("WireName(skip_slave_start) = %q, want the wire_name option", got)
	}
	if api.FieldByWireName(md, "skip-slave-start") != skip || api.FieldByWireName(md, "no-such-field") != nil {
		t.Error("FieldByWireName does not find fields by wire name")
	}

	term := (&iaasv1.TerminateInstancesRequest{}).ProtoReflect().Descriptor()
	instances, zone := term.Fields().ByName("instances"), term.Fields().ByName("zone")
	if api.WireName(instances) != "instances" {
		t.Errorf("WireName(instances) = %q, want the proto name", api.WireName(instances))
	}
	if !api.IsRequired(instances) || api.IsRequired(zone) {
		t.Errorf("IsRequired: instances %v (want true), zone %v (want false)", api.IsRequired(instances), api.IsRequired(zone))
	}
}

func TestReserved(t *testing.T) {
	// Every parameter the signer sets is reserved, so a caller can never override authentication.
	s := signer.Signer{Credentials: signer.Credentials{AccessKeyID: "AK", SecretAccessKey: "SK"}}
	signed, err := s.Sign("GET", "/iaas/", nil)
	if err != nil {
		t.Fatal(err)
	}
	q, err := url.ParseQuery(signed)
	if err != nil {
		t.Fatal(err)
	}
	if len(q) < 5 {
		t.Fatalf("signed query %q has too few parameters", signed)
	}
	for name := range q {
		if _, ok := api.Reserved(name); !ok {
			t.Errorf("the signer sets %s, which is not reserved", name)
		}
	}
	for _, name := range []string{"action", "zone", "token", "Signature", "TIME_STAMP", "Access_Key_ID", "expires", "Expires"} {
		if why, ok := api.Reserved(name); !ok || why == "" {
			t.Errorf("Reserved(%q) = %q, %v; want reserved with a reason", name, why, ok)
		}
	}
	for _, name := range []string{"instances", "instances.1", "zones", "signature_x", ""} {
		if _, ok := api.Reserved(name); ok {
			t.Errorf("Reserved(%q) = true, want false", name)
		}
	}
}

func TestResourceKinds(t *testing.T) {
	kinds := api.ResourceKinds()
	if len(kinds) < 26 {
		t.Fatalf("%d derivable resource kinds, want at least 26", len(kinds))
	}
	for _, k := range kinds {
		m := api.ByAction(k.Action)
		if m == nil || !m.ReadOnly || !strings.HasPrefix(k.Action, "Describe") {
			t.Errorf("%s: not a typed read-only Describe action", k.Action)
			continue
		}
		set := api.FieldByWireName(m.Output.Descriptor(), k.SetField)
		param := api.FieldByWireName(m.Input.Descriptor(), k.IDParam)
		if set == nil || !set.IsList() || set.Message() == nil || k.SetField != k.Name+"_set" {
			t.Errorf("%s: set field %q", k.Action, k.SetField)
			continue
		}
		if param == nil || !param.IsList() || param.Kind() != protoreflect.StringKind {
			t.Errorf("%s: id parameter %q", k.Action, k.IDParam)
		}
		if id := api.FieldByWireName(set.Message(), k.IDField); id == nil || k.IDField != k.Name+"_id" {
			t.Errorf("%s: id field %q", k.Action, k.IDField)
		}
		if got := api.FieldByWireName(set.Message(), "status") != nil; got != k.HasStatus {
			t.Errorf("%s: HasStatus %v, items have status: %v", k.Action, k.HasStatus, got)
		}
		if got, ok := api.ResourceKindOf(k.Action); !ok || got != k {
			t.Errorf("ResourceKindOf(%s) = %+v, %v", k.Action, got, ok)
		}
	}
	want := map[string]api.ResourceKind{
		"DescribeInstances": {Name: "instance", Action: "DescribeInstances", IDParam: "instances", SetField: "instance_set", IDField: "instance_id", HasStatus: true},
		"DescribeKeyPairs":  {Name: "keypair", Action: "DescribeKeyPairs", IDParam: "keypairs", SetField: "keypair_set", IDField: "keypair_id"},
		"DescribeLoadBalancerPolicies": {Name: "loadbalancer_policy", Action: "DescribeLoadBalancerPolicies", IDParam: "loadbalancer_policies",
			SetField: "loadbalancer_policy_set", IDField: "loadbalancer_policy_id"},
	}
	for action, w := range want {
		if got, ok := api.ResourceKindOf(action); !ok || got != w {
			t.Errorf("ResourceKindOf(%s) = %+v, %v; want %+v", action, got, ok, w)
		}
	}
	// Not of the shape: no id list parameter, or no _set, or not a Describe action.
	for _, action := range []string{"DescribeAppVersionAttachments", "DescribeClusterUsers", "RunInstances", "DescribeSomethingNew"} {
		if k, ok := api.ResourceKindOf(action); ok {
			t.Errorf("ResourceKindOf(%s) = %+v, want none", action, k)
		}
	}
}
