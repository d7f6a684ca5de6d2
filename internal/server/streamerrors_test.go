package server

import "testing"

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
