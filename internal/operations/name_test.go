package operations

import (
	"slices"
	"strings"
	"testing"
)

func TestParseName(t *testing.T) {
	for _, tt := range []struct {
		in      string
		want    Name
		wantErr string
	}{
		{in: "operations/j-abc123", want: Name{JobID: "j-abc123"}},
		{in: "operations/pek3b/j-abc123", want: Name{Zone: "pek3b", JobID: "j-abc123"}},
		{in: "jobs/j-abc123", wantErr: `does not start with "operations/"`},
		{in: "operations/", wantErr: "is not a QingCloud job id"},
		{in: "operations/i-abc", wantErr: "is not a QingCloud job id"},
		{in: "operations/j-ABC", wantErr: "is not a QingCloud job id"},
		{in: "operations/PEK3B/j-abc", wantErr: "is not a zone id"},
		{in: "operations/ab/cd/j-abc", wantErr: "is not a QingCloud job id"},
		{in: "operations/a/j-abc", wantErr: "is not a zone id"},
		{in: "operations/" + strings.Repeat("j", 200), wantErr: "bytes long"},
	} {
		got, err := ParseName(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseName(%q) error = %v, want one containing %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseName(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
		if got.String() != tt.in {
			t.Errorf("String() = %q, want %q", got.String(), tt.in)
		}
	}
}

func FuzzParseName(f *testing.F) {
	for _, s := range []string{"operations/j-abc", "operations/pek3a/j-x1", "operations//j-", "operations/j-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseName(s)
		if err != nil {
			return
		}
		// A parsed name formats back to itself and parses again to the same name.
		if n.String() != s {
			t.Fatalf("ParseName(%q).String() = %q", s, n.String())
		}
		if again, err := ParseName(n.String()); err != nil || again != n {
			t.Fatalf("round trip of %q: %+v, %v", s, again, err)
		}
	})
}

func TestParseFilter(t *testing.T) {
	for _, tt := range []struct {
		in      string
		want    Filter
		wantErr string
	}{
		{in: "", want: Filter{}},
		{in: "status = working", want: Filter{Statuses: []string{"working"}}},
		{in: `status = "done with failure" AND zone = pek3b`, want: Filter{Statuses: []string{"done with failure"}, Zone: "pek3b"}},
		{in: `status:failed OR status = "done with failure"`, want: Filter{Statuses: []string{"failed", "done with failure"}}},
		{in: "done = true", want: Filter{Statuses: []string{"successful", "failed", "done with failure"}}},
		{in: "done = false", want: Filter{Statuses: []string{"pending", "working"}}},
		{in: "done = false AND status = working", want: Filter{Statuses: []string{"working"}}},
		{in: "done = true AND status = working", wantErr: "no status matches"},
		{in: "status = running", wantErr: "not a job status"},
		{in: "owner = me", wantErr: "unknown field"},
		{in: "status = working status = failed", wantErr: "expected AND"},
		{in: "status = working AND", wantErr: "ends with AND"},
		{in: "status = working AND status = failed", wantErr: "join the statuses with OR"},
		{in: "status = failed OR zone = pek3a", wantErr: "OR joins terms on one field"},
		{in: `status = "working`, wantErr: "unterminated"},
		{in: "status", wantErr: "incomplete term"},
		{in: "zone = PEK3A", wantErr: "not a zone id"},
		{in: "done = maybe", wantErr: "use true or false"},
	} {
		got, err := ParseFilter(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseFilter(%q) error = %v, want one containing %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got.Zone != tt.want.Zone || !slices.Equal(got.Statuses, tt.want.Statuses) {
			t.Errorf("ParseFilter(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{"status = working", `status = "done with failure" AND zone = pek3b`, "done = true", `a = "\"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseFilter(s)
		if err != nil {
			return
		}
		for _, st := range got.Statuses {
			if !slices.Contains(jobStatuses, st) {
				t.Fatalf("ParseFilter(%q) accepted status %q", s, st)
			}
		}
		if got.Zone != "" && !validZone(got.Zone) {
			t.Fatalf("ParseFilter(%q) accepted zone %q", s, got.Zone)
		}
	})
}

func TestPageTokens(t *testing.T) {
	tok := encodePageToken(40, "done = true")
	if off, err := decodePageToken(tok, "done = true"); err != nil || off != 40 {
		t.Errorf("decode = %d, %v; want 40", off, err)
	}
	for _, bad := range []string{"!!", encodePageToken(40, "other"), "djE6LTE6"} {
		if _, err := decodePageToken(bad, "done = true"); err == nil {
			t.Errorf("token %q accepted", bad)
		}
	}
}
