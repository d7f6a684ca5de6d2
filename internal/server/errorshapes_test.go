package server_test

import (
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/emulator"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/server"
)

// violations returns the fields of the BadRequest detail of an AIP-193 REST error body, and its
// message.
func violations(body map[string]any) (fields []string, msg string) {
	e, _ := body["error"].(map[string]any)
	msg, _ = e["message"].(string)
	details, _ := e["details"].([]any)
	for _, d := range details {
		fv, _ := d.(map[string]any)["fieldViolations"].([]any)
		for _, v := range fv {
			f, _ := v.(map[string]any)["field"].(string)
			fields = append(fields, f)
		}
	}
	return fields, msg
}

// TestRESTErrorShapes: the mistakes of a careless caller get 4xx answers that name what is wrong,
// every time in the same shape, and none of them costs an upstream call.
func TestRESTErrorShapes(t *testing.T) {
	s := newStack(t, emulator.DefaultSecretAccessKey)
	deep := `{"action":"DescribeZones","params":` + strings.Repeat(`{"a":`, 5000) + "1" + strings.Repeat("}", 5000) + `}`
	for _, tc := range []struct {
		name, method, path, body string
		code                     int
		fields                   []string // the BadRequest's fields, in order
		says                     []string // in the message
		never                    []string // not in the message
	}{
		{"unknown query parameter", "GET", "/v1/iaas/DescribeInstances?instanse=i-x", "", 400, []string{"instanse"}, []string{`unknown query parameter "instanse"`}, nil},
		{"query value of the wrong type", "GET", "/v1/iaas/DescribeInstances?limit=abc", "", 400, []string{"limit"}, []string{`"limit" must be an integer`}, []string{"strconv"}},
		{"a string for a list", "POST", "/v1/iaas/RunInstances", `{"image_id":"x","vxnets":"vxnet-0"}`, 400, []string{"vxnets"}, []string{"vxnets must be a list of strings, not a string"}, []string{"proto:", "syntax error", "body"}},
		{"every bad field", "POST", "/v1/iaas/RunInstances", `{"count":"many","vxnets":"vxnet-0","nope":1}`, 400, []string{"count", "nope", "vxnets"}, []string{"count must be an integer", "nope is not a field"}, []string{"proto:"}},
		{"a bad field inside a list of objects", "POST", "/v1/iaas/AddSecurityGroupRules", `{"security_group":"sg-1","rules":[{"protocol":"tcp"},{"priority":"high"}]}`, 400, []string{"rules.2.priority"}, []string{"rules.2.priority must be an integer"}, nil},
		{"JSON nested 5000 deep", "POST", "/v1/iaas:call", deep, 400, []string{"body"}, []string{"nested more than 64 levels"}, nil},
		{"limit above the page size", "GET", "/v1/iaas/DescribeInstances?limit=500", "", 400, []string{"limit"}, []string{"limit must be from 1 to 100", "not 500"}, nil},
		{"limit 0", "GET", "/v1/iaas/DescribeInstances?limit=0", "", 400, []string{"limit"}, []string{"not 0"}, nil},
		{"negative offset", "GET", "/v1/iaas/DescribeInstances?offset=-1", "", 400, []string{"offset"}, []string{"offset must be 0 or more"}, nil},
		{"every missing required field", "POST", "/v1/iaas/RunInstances", `{}`, 400, []string{"image_id", "login_mode"}, nil, nil},
		{"CallService: wrong types and missing fields together", "POST", "/v1/iaas:call", `{"action":"RunInstances","params":{"count":"x","limit":7}}`, 400, []string{"params.count", "image_id", "login_mode"}, nil, nil},
		{"GET on a POST-only action", "GET", "/v1/iaas/RunInstances", "", 405, nil, []string{"GET is not allowed", "use POST"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := restCall(t, tc.method, s.rest+tc.path, tc.body)
			fields, msg := violations(body)
			if code != tc.code {
				t.Errorf("HTTP %d %.500v, want %d", code, body, tc.code)
			}
			if strings.Join(fields, ",") != strings.Join(tc.fields, ",") {
				t.Errorf("fields %q, want %q (%.300s)", fields, tc.fields, msg)
			}
			for _, w := range tc.says {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q does not say %q", msg, w)
				}
			}
			for _, w := range tc.never {
				if strings.Contains(msg, w) {
					t.Errorf("message %q says %q", msg, w)
				}
			}
		})
	}
	if n := s.emu.Stats().TotalRequests; n != 0 {
		t.Errorf("the refused requests made %d upstream calls", n)
	}

	req, _ := http.NewRequest("GET", s.rest+"/v1/iaas/RunInstances", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Allow"); got != "POST" {
		t.Errorf("405 Allow: %q, want POST", got)
	}

	// gRPC callers get the same paging check.
	_, err = iaasv1.NewInstanceServiceClient(s.conn).DescribeInstances(ctxT(t), &iaasv1.DescribeInstancesRequest{Limit: proto.Int32(500)})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "limit must be from 1 to 100") {
		t.Errorf("gRPC limit 500: %v", err)
	}
	params, _ := structpb.NewStruct(map[string]any{"limit": 500})
	_, err = iaasv1.NewCallServiceClient(s.conn).Call(ctxT(t), &iaasv1.CallRequest{Action: "DescribeInstances", Params: params})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("CallService limit 500: %v", err)
	}
}

func TestOpenAPIInfo(t *testing.T) {
	s := newStack(t, emulator.DefaultSecretAccessKey)
	code, doc := restCall(t, "GET", s.rest+"/openapi.json", "")
	info, _ := doc["info"].(map[string]any)
	if code != 200 || info["title"] != server.OpenAPITitle || info["version"] != server.OpenAPIVersion {
		t.Errorf("GET /openapi.json: %d info %v, want title %q version %q", code, info, server.OpenAPITitle, server.OpenAPIVersion)
	}
}
