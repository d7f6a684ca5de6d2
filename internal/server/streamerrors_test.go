package server

import (
	"encoding/json"
	"testing"
)

func TestRewriteStreamError(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"result":{"instance":{}}}` + "\n", `{"result":{"instance":{}}}` + "\n"},
		{`{"error":{"code":5,"message":"job j-1 not found","details":[{"@type":"x","reason":"JOB_NOT_FOUND"}]}}` + "\n",
			`{"error":{"code":404,"message":"job j-1 not found","status":"NOT_FOUND","details":[{"@type":"x","reason":"JOB_NOT_FOUND"}]}}` + "\n"},
		{`{"error":{"code":14,"message":"server shutting down; resume the watch"}}`,
			`{"error":{"code":503,"message":"server shutting down; resume the watch","status":"UNAVAILABLE"}}` + "\n"},
		{`{"error":{"code":404,"message":"already AIP-193","status":"NOT_FOUND"}}`, // no numeric gRPC code 404: passes
			`{"error":{"code":404,"message":"already AIP-193","status":"NOT_FOUND"}}`},
		{`{"error": not json`, `{"error": not json`},
	}
	for _, tt := range tests {
		if got := string(rewriteStreamError([]byte(tt.in))); got != tt.want {
			t.Errorf("rewriteStreamError(%s)\n got %s\nwant %s", tt.in, got, tt.want)
		}
	}
}

// TestRewriteStreamErrorDetailsSpelling: the details of a stream's error line are spelled as in unary
// errors (fieldViolations, no empty fields), not as the gateway's marshaler wrote them.
func TestRewriteStreamErrorDetailsSpelling(t *testing.T) {
	in := `{"error":{"code":3,"message":"bad","details":[` +
		`{"@type":"type.googleapis.com/google.rpc.BadRequest","field_violations":[{"field":"limit","description":"d","reason":"","localized_message":null}]},` +
		`{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"INVALID_REQUEST","domain":"qingcloud.com","metadata":{}}]}}` + "\n"
	var got struct {
		Error struct {
			Code    int
			Status  string
			Details []map[string]any
		}
	}
	out := rewriteStreamError([]byte(in))
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	if got.Error.Code != 400 || got.Error.Status != "INVALID_ARGUMENT" || len(got.Error.Details) != 2 {
		t.Fatalf("got %s", out)
	}
	fv, ok := got.Error.Details[0]["fieldViolations"].([]any)
	if !ok || len(fv) != 1 || got.Error.Details[0]["field_violations"] != nil {
		t.Errorf("BadRequest detail %v, want fieldViolations", got.Error.Details[0])
	}
	if v := fv[0].(map[string]any); v["reason"] != nil || v["field"] != "limit" {
		t.Errorf("violation %v, want no empty reason", v)
	}
	if _, ok := got.Error.Details[1]["metadata"]; ok {
		t.Errorf("ErrorInfo %v, want no empty metadata", got.Error.Details[1])
	}
}
