package naming

import (
	"strings"
	"testing"
)

func TestReadOnlyByName(t *testing.T) {
	for name, want := range map[string]bool{
		"DescribeInstances": true, "GetMonitor": true, "RunInstances": false, "DeleteVolumes": false, "Describe": true,
		"describeInstances": false, "": false, "Getaway": true,
	} {
		if got := ReadOnlyByName(name); got != want {
			t.Errorf("ReadOnlyByName(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestValidAction(t *testing.T) {
	for name, want := range map[string]bool{
		"DescribeInstances": true, "RunInstances": true, "DescribeS2Servers": true, "Ab": true,
		strings.Repeat("A", 80): true, strings.Repeat("A", 81): false,
		"": false, "A": false, "describeInstances": false, "Describe_Instances": false, "Describe Instances": false,
		"DescribeInstances&zone=x": false, "9Lives": false, "DescribeInstances\n": false,
	} {
		if got := ValidAction(name); got != want {
			t.Errorf("ValidAction(%q) = %v, want %v", name, got, want)
		}
	}
}

func FuzzValidAction(f *testing.F) {
	for _, s := range []string{"DescribeInstances", "", "a", "Ab&c=d", "ÀBC", strings.Repeat("Z", 90)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !ValidAction(s) {
			return
		}
		// A valid name is safe as a parameter value and a metric label: ASCII letters and digits only.
		if len(s) < 2 || len(s) > 80 || s[0] < 'A' || s[0] > 'Z' {
			t.Fatalf("ValidAction(%q) accepted a name of the wrong length or first letter", s)
		}
		for i := 0; i < len(s); i++ {
			c := s[i]
			if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9') {
				t.Fatalf("ValidAction(%q) accepted byte %q", s, c)
			}
		}
	})
}
