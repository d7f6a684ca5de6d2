package datetime

import (
	"testing"
	"time"
)

// wantDateTime is Append's output as package time writes it.
func wantDateTime(secs int64) string {
	return time.Unix(secs, 0).UTC().Format("2006-01-02T15:04:05")
}

// TestAppend: the first and last second of the range, the epoch, leap days and the ends of
// centuries and 400-year eras (leap or not), a second either side of each.
func TestAppend(t *testing.T) {
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
		if s < MinSeconds || s > MaxSeconds {
			continue
		}
		if got, want := string(Append(nil, s)), wantDateTime(s); got != want {
			t.Errorf("Append(%d) = %s, want %s", s, got, want)
		}
	}
}

// FuzzAppend compares Append with package time on every second of the range.
func FuzzAppend(f *testing.F) {
	for _, s := range []int64{MinSeconds, MaxSeconds, 0, -1, 951782400, 1700000000} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s int64) {
		s = MinSeconds + (s%(MaxSeconds-MinSeconds+1)+(MaxSeconds-MinSeconds+1))%(MaxSeconds-MinSeconds+1)
		if got, want := string(Append(nil, s)), wantDateTime(s); got != want {
			t.Fatalf("Append(%d) = %s, want %s", s, got, want)
		}
	})
}
