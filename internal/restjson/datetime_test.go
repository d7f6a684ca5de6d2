package restjson

import (
	"testing"
	"time"
)

// wantDateTime is appendDateTime's output as package time writes it.
func wantDateTime(secs int64) string {
	return time.Unix(secs, 0).UTC().Format("2006-01-02T15:04:05")
}

// TestAppendDateTime: the first and last second of the range, the epoch, leap days and the ends of
// centuries and 400-year eras (leap or not), a second either side of each.
func TestAppendDateTime(t *testing.T) {
	var secs []int64
	for _, day := range []string{
		"0001-01-01", "0001-03-01", "0004-02-29", "0100-02-28", "0100-03-01", "0400-02-29", "1600-03-01",
		"1900-02-28", "1900-03-01", "1969-12-31", "1970-01-01", "2000-02-29", "2000-03-01", "2024-02-29",
		"2100-03-01", "9999-12-31",
	} {
		d, err := time.Parse(time.DateOnly, day)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []int64{-1, 0, 1, 86399} {
			secs = append(secs, d.Unix()+s)
		}
	}
	for _, s := range secs {
		if s < minTimestampSeconds || s > maxTimestampSeconds {
			continue
		}
		if got, want := string(appendDateTime(nil, s)), wantDateTime(s); got != want {
			t.Errorf("appendDateTime(%d) = %s, want %s", s, got, want)
		}
	}
}

// FuzzAppendDateTime compares appendDateTime with package time on every second of the range.
func FuzzAppendDateTime(f *testing.F) {
	for _, s := range []int64{minTimestampSeconds, maxTimestampSeconds, 0, -1, 951782400, 1700000000} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s int64) {
		s = minTimestampSeconds + (s%(maxTimestampSeconds-minTimestampSeconds+1)+(maxTimestampSeconds-minTimestampSeconds+1))%(maxTimestampSeconds-minTimestampSeconds+1)
		if got, want := string(appendDateTime(nil, s)), wantDateTime(s); got != want {
			t.Fatalf("appendDateTime(%d) = %s, want %s", s, got, want)
		}
	})
}
