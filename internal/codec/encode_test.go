package codec_test

import (
	"maps"
	"math"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/codec"
)

func mustStruct(t testing.TB, m map[string]any) *structpb.Struct {
	t.Helper()
	s, err := structpb.NewStruct(m)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestEncode(t *testing.T) {
	tests := []struct {
		name string
		msg  proto.Message
		want map[string]string
	}{{
		name: "empty request sends nothing",
		msg:  &iaasv1.DescribeInstancesRequest{},
		want: map[string]string{},
	}, {
		name: "nil typed pointer sends nothing",
		msg:  (*iaasv1.DescribeInstancesRequest)(nil),
		want: map[string]string{},
	}, {
		name: "RunInstances vxnets.N and scalars",
		msg: &iaasv1.RunInstancesRequest{
			ImageId:      proto.String("centos64x86a"),
			InstanceType: proto.String("small_b"),
			Count:        proto.Int32(1),
			Memory:       proto.Int64(2048),
			LoginMode:    proto.String("passwd"),
			Vxnets:       []string{"vxnet-0", "vxnet-abcd123|192.168.1.2"},
			Zone:         proto.String("pek3a"),
		},
		want: map[string]string{
			"image_id": "centos64x86a", "instance_type": "small_b", "count": "1", "memory": "2048",
			"login_mode": "passwd", "vxnets.1": "vxnet-0", "vxnets.2": "vxnet-abcd123|192.168.1.2", "zone": "pek3a",
		},
	}, {
		name: "AddSecurityGroupRules rules.N.field with direction=0 and empty val2",
		msg: &iaasv1.AddSecurityGroupRulesRequest{
			SecurityGroup: proto.String("sg-6ft05wt6"),
			Rules: []*iaasv1.SecurityGroupRule{{
				Action: proto.String("accept"), Direction: proto.Int32(0), Priority: proto.Int32(7),
				Protocol: proto.String("tcp"), Val1: proto.String("22"), Val2: proto.String(""), Val3: proto.String(""),
			}, {
				Action: proto.String("drop"), Direction: proto.Int32(1), Priority: proto.Int32(100),
				Protocol: proto.String("icmp"), SecurityGroupRuleName: proto.String("no ping"),
			}},
		},
		want: map[string]string{
			"security_group": "sg-6ft05wt6",
			"rules.1.action": "accept", "rules.1.direction": "0", "rules.1.priority": "7", "rules.1.protocol": "tcp",
			"rules.1.val1": "22", "rules.1.val2": "", "rules.1.val3": "",
			"rules.2.action": "drop", "rules.2.direction": "1", "rules.2.priority": "100", "rules.2.protocol": "icmp",
			"rules.2.security_group_rule_name": "no ping",
		},
	}, {
		name: "AddLoadBalancerListeners joins a repeated scalar and renders nested messages as JSON",
		msg: &iaasv1.AddLoadBalancerListenersRequest{
			Loadbalancer: proto.String("lb-1234abcd"),
			Listeners: []*iaasv1.LoadbalancerListener{{
				ListenerPort: proto.Int32(443), ListenerProtocol: proto.String("https"), BackendProtocol: proto.String("http"),
				BalanceMode: proto.String("roundrobin"), SessionSticky: proto.String("insert|3600"),
				HealthyCheckMethod: proto.String("http|/index.html"), HealthyCheckOption: proto.String("10|5|2|5"),
				ListenerOption: proto.Int32(2), ServerCertificateId: []string{"sc-a", "sc-b"},
				Backends: []*iaasv1.LoadbalancerBackend{{ResourceId: proto.String("i-1"), Port: proto.Int32(80)}},
			}},
		},
		want: map[string]string{
			"loadbalancer":                      "lb-1234abcd",
			"listeners.1.listener_port":         "443",
			"listeners.1.listener_protocol":     "https",
			"listeners.1.backend_protocol":      "http",
			"listeners.1.balance_mode":          "roundrobin",
			"listeners.1.session_sticky":        "insert|3600",
			"listeners.1.healthy_check_method":  "http|/index.html",
			"listeners.1.healthy_check_option":  "10|5|2|5",
			"listeners.1.listener_option":       "2",
			"listeners.1.server_certificate_id": "sc-a,sc-b",
			"listeners.1.backends":              `[{"port":80,"resource_id":"i-1"}]`,
		},
	}, {
		name: "DescribeInstances status.N and verbose",
		msg: &iaasv1.DescribeInstancesRequest{
			Instances: []string{"i-ogbndull"}, Status: []string{"running", "stopped"}, Verbose: proto.Int32(1),
			Limit: proto.Int32(100), Offset: proto.Int32(0),
		},
		want: map[string]string{
			"instances.1": "i-ogbndull", "status.1": "running", "status.2": "stopped", "verbose": "1",
			"limit": "100", "offset": "0",
		},
	}, {
		// No request of the spec has a bool; Encode works on any message, so use a resource message.
		name: "bool as 1 and 0",
		msg:  &iaasv1.Cluster{Debug: proto.Bool(true), PartnerAccess: proto.Bool(false), ClusterId: proto.String("cl-1")},
		want: map[string]string{"debug": "1", "partner_access": "0", "cluster_id": "cl-1"},
	}, {
		name: "Timestamp as UTC whole seconds",
		msg: &iaasv1.GetMonitorRequest{
			StartTime: timestamppb.New(time.Date(2013, 8, 27, 22, 30, 10, 999, time.FixedZone("CST", 8*3600))),
			EndTime:   timestamppb.New(time.Date(2013, 8, 28, 0, 0, 0, 0, time.UTC)),
		},
		want: map[string]string{"start_time": "2013-08-27T14:30:10Z", "end_time": "2013-08-28T00:00:00Z"},
	}, {
		name: "Struct field as compact JSON text",
		msg: &iaasv1.UpdateClusterEnvironmentRequest{
			Cluster: proto.String("cl-1"),
			Env: mustStruct(t, map[string]any{
				"zk": map[string]any{"tick_time": 2000, "note": "a<b & c"}, "ratio": 0.5, "debug": true, "none": nil,
			}),
			Roles: []string{"zk_node"},
		},
		want: map[string]string{
			"cluster": "cl-1",
			"env":     `{"debug":true,"none":null,"ratio":0.5,"zk":{"note":"a<b & c","tick_time":2000}}`,
			"roles.1": "zk_node",
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := codec.Encode(tc.msg)
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got, tc.want) {
				t.Errorf("Encode:\n got %v\nwant %v", got, tc.want)
			}
		})
	}
}

func TestEncodeWireName(t *testing.T) {
	// Find a field with a wire_name through the generated types and check it is used.
	req := &iaasv1.ModifyRDBParametersRequest{
		Rdb: proto.String("rdb-1"),
		Parameters: []*iaasv1.RdbParameters{{
			LogBinIndex:    proto.String("mysql-bin.index"),
			SkipSlaveStart: proto.Int32(1),
		}},
	}
	got, err := codec.Encode(req)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"rdb": "rdb-1", "parameters.1.log-bin-index": "mysql-bin.index", "parameters.1.skip-slave-start": "1"}
	if !maps.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestEncodeErrors(t *testing.T) {
	tests := []struct {
		name string
		msg  proto.Message
		want string
	}{
		{"nil", nil, "nil message"},
		{"NaN in Struct", &iaasv1.UpdateClusterEnvironmentRequest{Env: &structpb.Struct{Fields: map[string]*structpb.Value{
			"x": structpb.NewNumberValue(math.NaN())}}}, "parameter env"},
		{"timestamp out of range", &iaasv1.GetMonitorRequest{StartTime: &timestamppb.Timestamp{Seconds: 1 << 50}}, "parameter start_time"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := codec.Encode(tc.msg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Encode error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestEncodeStruct(t *testing.T) {
	tests := []struct {
		name string
		in   map[string]any
		want map[string]string
	}{{
		name: "scalars",
		in:   map[string]any{"count": 2, "ratio": 1.25, "big": 1e20, "tiny": 1e-7, "neg": -3, "name": "a b", "empty": "", "flag": true, "off": false, "none": nil},
		want: map[string]string{"count": "2", "ratio": "1.25", "big": "100000000000000000000", "tiny": "1e-07", "neg": "-3", "name": "a b", "empty": "", "flag": "1", "off": "0"},
	}, {
		name: "list of scalars",
		in:   map[string]any{"instances": []any{"i-1", "i-2"}, "ports": []any{80, 443}, "mixed": []any{"a", nil, true}},
		want: map[string]string{"instances.1": "i-1", "instances.2": "i-2", "ports.1": "80", "ports.2": "443", "mixed.1": "a", "mixed.3": "1"},
	}, {
		name: "list of objects",
		in: map[string]any{"rules": []any{
			map[string]any{"protocol": "tcp", "direction": 0, "val2": "", "ids": []any{"sc-a", "sc-b"}, "opt": map[string]any{"k": 1}, "nested": []any{map[string]any{"a": 1}}, "skip": nil},
		}},
		want: map[string]string{
			"rules.1.protocol": "tcp", "rules.1.direction": "0", "rules.1.val2": "", "rules.1.ids": "sc-a,sc-b",
			"rules.1.opt": `{"k":1}`, "rules.1.nested": `[{"a":1}]`,
		},
	}, {
		name: "nested object and nested list as JSON text",
		in:   map[string]any{"env": map[string]any{"a": []any{1, "x"}, "b": map[string]any{}}, "grid": []any{[]any{1, 2}}},
		want: map[string]string{"env": `{"a":[1,"x"],"b":{}}`, "grid.1": "[1,2]"},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := codec.EncodeStruct(mustStruct(t, tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got, tc.want) {
				t.Errorf("EncodeStruct:\n got %v\nwant %v", got, tc.want)
			}
		})
	}

	if got, err := codec.EncodeStruct(nil); err != nil || len(got) != 0 {
		t.Errorf("EncodeStruct(nil) = %v, %v; want empty", got, err)
	}
	for name, in := range map[string]*structpb.Struct{
		"collision":  mustStruct(t, map[string]any{"a": []any{"x"}, "a.1": "y"}),
		"empty name": mustStruct(t, map[string]any{"": "x"}),
		"NaN":        {Fields: map[string]*structpb.Value{"x": structpb.NewNumberValue(math.Inf(1))}},
	} {
		if _, err := codec.EncodeStruct(in); err == nil {
			t.Errorf("EncodeStruct(%s): no error", name)
		}
	}
}
