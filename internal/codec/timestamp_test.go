package codec

import "testing"

// TestUTCSeconds: the fast form of timestamps reads what parseTime reads, and leaves everything else
// (other forms, impossible dates, non-digits) to it.
func TestUTCSeconds(t *testing.T) {
	for _, s := range []string{
		"2013-08-28T14:26:03Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "2024-02-29T12:00:00Z",
		"2023-02-29T12:00:00Z", "2023-04-31T00:00:00Z", "2023-13-01T00:00:00Z", "2023-00-01T00:00:00Z",
		"2023-01-00T00:00:00Z", "2023-01-01T24:00:00Z", "2023-01-01T00:60:00Z", "2023-01-01T00:00:60Z",
		"0000-01-01T00:00:00Z", "2023-01-01 00:00:00Z", "2023-01-01t00:00:00Z", "2023-01-01T00:00:00z",
		"2023-01-01T00:00:00", "2023-01-01T00:00:00.5Z", "2023-01-01T00:00:00+08:00", "2O23-01-01T00:00:00Z",
		"2023-1-01T00:00:00Z ", " 2023-01-01T00:00:00Z", "+023-01-01T00:00:00Z", "2023-01-01T0-:00:00Z",
	} {
		got, ok := utcSeconds([]byte(s))
		want, err := parseTime(s)
		switch {
		case ok && (err != nil || !got.Equal(want)):
			t.Errorf("utcSeconds(%q) = %v, parseTime = %v, %v", s, got, want, err)
		case !ok && len(s) == 20 && s[10] == 'T' && s[19] == 'Z' && err == nil && s[0] != '+':
			t.Errorf("utcSeconds(%q) left to parseTime a plain UTC time (%v)", s, want)
		}
	}
}
