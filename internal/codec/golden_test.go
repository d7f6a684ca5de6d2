package codec_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/codec"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/signer"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// goldenTime is the time_stamp of the official signature example (qingcloud-protocol.md §2.6 V1).
var goldenTime = time.Date(2013, 8, 27, 14, 30, 10, 0, time.UTC)

// TestGoldenSignedParameters pins the signed GET query of actions with nested lists: Encode, add
// action (and version for V1), sign with the documentation's example keys.
func TestGoldenSignedParameters(t *testing.T) {
	tests := []struct {
		action string
		req    proto.Message
		extra  map[string]string
		// contains is a canonical-query fragment from the official documentation.
		contains string
		// signature, when set, is the official expected signature.
		signature string
	}{{
		action: "AddSecurityGroupRules",
		req: &iaasv1.AddSecurityGroupRulesRequest{
			SecurityGroup: proto.String("sg-6ft05wt6"),
			Rules: []*iaasv1.SecurityGroupRule{{
				Action: proto.String("accept"), Direction: proto.Int32(0), Priority: proto.Int32(7),
				Protocol: proto.String("tcp"), Val1: proto.String("22"), Val2: proto.String(""), Val3: proto.String(""),
			}, {
				Action: proto.String("accept"), Direction: proto.Int32(0), Priority: proto.Int32(1),
				Protocol: proto.String("icmp"), Val1: proto.String("8"), Val2: proto.String("0"),
				SecurityGroupRuleName: proto.String("allow ping"),
			}},
			Zone: proto.String("pek3a"),
		},
		// D-SGR's example request.
		contains: "action=AddSecurityGroupRules&rules.1.action=accept&rules.1.direction=0&rules.1.priority=7&rules.1.protocol=tcp&rules.1.val1=22&rules.1.val2=&rules.1.val3=&",
	}, {
		action: "AddLoadBalancerListeners",
		req: &iaasv1.AddLoadBalancerListenersRequest{
			Loadbalancer: proto.String("lb-1234abcd"),
			Listeners: []*iaasv1.LoadbalancerListener{{
				ListenerPort: proto.Int32(80), ListenerProtocol: proto.String("tcp"), BackendProtocol: proto.String("tcp"),
				BalanceMode: proto.String("roundrobin"), SessionSticky: proto.String("insert|3600"),
				HealthyCheckMethod: proto.String("http|/index.html"), HealthyCheckOption: proto.String("10|5|2|5"),
				ListenerOption: proto.Int32(2),
			}, {
				ListenerPort: proto.Int32(443), ListenerProtocol: proto.String("https"), BackendProtocol: proto.String("http"),
				LoadbalancerListenerName: proto.String("web tls"), ServerCertificateId: []string{"sc-j6f28axk", "sc-2"},
			}},
			Zone: proto.String("pek3a"),
		},
		// D-LBL's example, in canonical (sorted, escaped) form.
		contains: "listeners.1.backend_protocol=tcp&listeners.1.balance_mode=roundrobin&listeners.1.healthy_check_method=http%7C%2Findex.html&listeners.1.healthy_check_option=10%7C5%7C2%7C5&listeners.1.listener_option=2&listeners.1.listener_port=80&listeners.1.listener_protocol=tcp&listeners.1.session_sticky=insert%7C3600&",
	}, {
		action: "RunInstances",
		req: &iaasv1.RunInstancesRequest{
			Count: proto.Int32(1), Vxnets: []string{"vxnet-0"}, Zone: proto.String("pek3a"),
			InstanceType: proto.String("small_b"), InstanceName: proto.String("demo"), ImageId: proto.String("centos64x86a"),
			LoginMode: proto.String("passwd"), LoginPasswd: proto.String("QingCloud20130712"),
		},
		extra: map[string]string{"version": "1"},
		// The official signature example V1 (D-SIG), reproduced from a typed request.
		contains:  "&vxnets.1=vxnet-0&zone=pek3a",
		signature: "byjccvWIvAftaq%2BoublemagH3bYAlDWxxLFAzAsyslw%3D",
	}}
	s := signer.Signer{
		Credentials: signer.Credentials{AccessKeyID: "QYACCESSKEYIDEXAMPLE", SecretAccessKey: "SECRETACCESSKEY"},
		Now:         func() time.Time { return goldenTime },
	}
	for _, tc := range tests {
		t.Run(tc.action, func(t *testing.T) {
			params, err := codec.Encode(tc.req)
			if err != nil {
				t.Fatal(err)
			}
			params["action"] = tc.action
			for k, v := range tc.extra {
				params[k] = v
			}
			signed, err := s.Sign("GET", "/iaas/", params)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(signed, tc.contains) {
				t.Errorf("signed query lacks the documented fragment\n%s\nwant it to contain\n%s", signed, tc.contains)
			}
			if tc.signature != "" && !strings.HasSuffix(signed, "&signature="+tc.signature) {
				t.Errorf("signature differs from the official example:\n%s", signed)
			}
			got := "# " + tc.action + ": the signed GET query for path /iaas/, keys QYACCESSKEYIDEXAMPLE/SECRETACCESSKEY,\n" +
				"# time_stamp " + goldenTime.Format(time.RFC3339) + ", one parameter per line. Regenerate with go test -update.\n" +
				strings.ReplaceAll(signed, "&", "\n&") + "\n"
			path := filepath.Join("testdata", "golden", tc.action+".golden")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("signed parameters differ from %s:\n got:\n%s\nwant:\n%s", path, got, want)
			}
		})
	}
}
