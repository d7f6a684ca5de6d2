// Tests of the decoder's fast paths against the slow ones they stand for.
package codec

import (
	"encoding/binary"
	"errors"
	"math/bits"
	"strings"
	"testing"

	"google.golang.org/protobuf/types/dynamicpb"
)

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

// TestSpecials: the eight-byte test finds the first byte the string loop stops at, wherever it is,
// whatever follows it, and nothing in eight plain bytes.
func TestSpecials(t *testing.T) {
	for c := 0; c < 256; c++ {
		for pos := range 8 {
			for _, fill := range []byte{'a', ' ', '~', '!', 0x7f, 0, '"', 0xff} {
				w := make([]byte, 8)
				for i := range w {
					w[i] = 'a'
					if i > pos {
						w[i] = fill
					}
				}
				w[pos] = byte(c)
				m := specials(binary.LittleEndian.Uint64(w))
				first := -1
				for i, b := range w {
					if strSpecial[b] {
						first = i
						break
					}
				}
				switch {
				case first < 0 && m != 0:
					t.Fatalf("specials(%q) = %#x, want 0", w, m)
				case first >= 0 && (m == 0 || bits.TrailingZeros64(m)/8 != first):
					t.Fatalf("specials(%q) = %#x, want the first mark at byte %d", w, m, first)
				}
			}
		}
	}
}

// TestKeyRefIs: a key matches exactly its own bytes, whatever its length and wherever another key
// differs from it.
func TestKeyRefIs(t *testing.T) {
	for n := 0; n <= 26; n++ {
		key := strings.Repeat("k", n)
		k := keyRef{key: key}
		if n >= 8 {
			k.head, k.tail = binary.LittleEndian.Uint64([]byte(key)), binary.LittleEndian.Uint64([]byte(key[n-8:]))
		}
		if !k.is([]byte(key)) {
			t.Fatalf("%q does not match itself", key)
		}
		for _, other := range []string{key + "k", strings.Repeat("k", max(n-1, 0))} {
			if other != key && k.is([]byte(other)) {
				t.Errorf("%q matches %q", key, other)
			}
		}
		for i := range n {
			b := []byte(key)
			b[i] = 'x'
			if k.is(b) {
				t.Errorf("%q matches %q", key, b)
			}
		}
	}
}

// TestDeepMismatchPath: the path of a skipped value is whole when it is deeper than the decoder's
// array of path steps.
func TestDeepMismatchPath(t *testing.T) {
	const depth = 45
	doc := strings.Repeat(`{"children":[{},`, depth) + `{"i32":{}}` + strings.Repeat(`]}`, depth)
	err := Decode([]byte(doc), dynamicpb.NewMessage(allKinds(t)))
	var mm *MismatchError
	if !errors.As(err, &mm) || len(mm.Fields) != 1 {
		t.Fatalf("Decode: %v, want one mismatch", err)
	}
	if want := strings.Repeat("children[1].", depth) + "i32"; mm.Fields[0].Path != want {
		t.Errorf("path %q, want %q", mm.Fields[0].Path, want)
	}
}
