package telemetry

import "testing"

// FuzzRetCodeMatcher feeds arbitrary bodies to the streaming ret_code matcher, whole and split at
// every position: it never panics, and the answer does not depend on how the body was cut.
func FuzzRetCodeMatcher(f *testing.F) {
	for _, s := range []string{
		`{"action":"DescribeZonesResponse","ret_code":0}`,
		`{"message":"ParameterError","ret_code":1100}`,
		`{"ret_code" : "5100"}`, `{"ret_code":-1}`, `{"ret_code":12345678901}`,
		`{"a":"\"ret_code\":7","ret_code":3}`, `"ret_code"`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var whole retCodeMatcher
		whole.feed(body)
		want := whole.result()
		for i := 0; i <= len(body) && i < 64; i++ {
			var m retCodeMatcher
			m.feed(body[:i])
			m.feed(body[i:])
			if got := m.result(); got != want {
				t.Fatalf("body %q split at %d: %q, whole: %q", body, i, got, want)
			}
		}
	})
}
