package zone_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/zone"
)

func TestValid(t *testing.T) {
	for z, want := range map[string]bool{
		"pek3a": true, "sh1a": true, "ap2a": true, "gd2": true, "ap-2a": true,
		"a" + strings.Repeat("b", 31): true, "a" + strings.Repeat("b", 32): false,
		"": false, "p": false, "PEK3A": false, "Pek3a": false, " pek3a": false, "pek3a ": false,
		"3pek": false, "-pek": false, "pek3a\n": false, "pek3a&action=RunInstances": false, "pek_3a": false,
		"pek3a/../x": false, "pék3a": false,
	} {
		if got := zone.Valid(z); got != want {
			t.Errorf("Valid(%q) = %v, want %v", z, got, want)
		}
	}
}

func TestResolve(t *testing.T) {
	for _, tc := range []struct{ requested, fallback, want string }{
		{"sh1a", "pek3a", "sh1a"},
		{"", "pek3a", "pek3a"},
		{"", "", ""},
		{"PEK3A", "pek3a", "PEK3A"}, // never corrected: Violation refuses it
	} {
		if got := zone.Resolve(tc.requested, tc.fallback); got != tc.want {
			t.Errorf("Resolve(%q, %q) = %q, want %q", tc.requested, tc.fallback, got, tc.want)
		}
	}
}

func TestViolation(t *testing.T) {
	if v := zone.Violation("pek3a"); v != nil {
		t.Errorf("Violation(pek3a) = %v, want nil", v)
	}
	for z, want := range map[string]string{
		"":      "zone is required: set it in the request or configure a default zone on the server",
		"PEK3A": `zone "PEK3A" is not a zone id: use a lower-case zone id such as pek3a`,
	} {
		v := zone.Violation(z)
		if v.GetField() != zone.Field || v.GetDescription() != want {
			t.Errorf("Violation(%q) = %v, want field zone, %q", z, v, want)
		}
	}
}

// FuzzViolation: any zone is either valid (and a zone id) or refused with a bounded (the zone is
// clipped to 64 bytes before quoting), valid-UTF-8
// description that names the zone field; never a panic.
func FuzzViolation(f *testing.F) {
	for _, s := range []string{"pek3a", "", "PEK3A", "pek3a&x=1", strings.Repeat("é", 100), "\xff\xfe", "0" + strings.Repeat("\xda", 34)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, z string) {
		v := zone.Violation(z)
		if zone.Valid(z) != (v == nil) {
			t.Fatalf("Valid(%q) = %v but Violation = %v", z, zone.Valid(z), v)
		}
		if v == nil {
			return
		}
		if v.GetField() != zone.Field || len(v.GetDescription()) > 1024 {
			t.Fatalf("Violation(%q) = %v", z, v)
		}
		if utf8.ValidString(z) && !utf8.ValidString(v.GetDescription()) {
			t.Fatalf("Violation(%q) description is not valid UTF-8: %q", z, v.GetDescription())
		}
	})
}
