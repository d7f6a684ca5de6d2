package emulator

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"
)

// jsonCases are answer values of every shape appendJSON writes itself, and some it hands on.
var jsonCases = []any{
	nil, "", "plain", `quote " backslash \ slash /`, "<script>&amp;</script>", "\b\f\n\r\t\x00\x1f\x7f",
	"\u2028\u2029 line separators", "\xff\xfe invalid \xc3", "中文 é 🙂", true, false,
	0, -1, int32(-2147483648), int64(1) << 62, uint32(4294967295), uint64(1) << 63,
	1.5, 1e21, 1e-7, float32(0.1), jtime{}, jtime(time.Date(2026, 12, 2, 1, 2, 3, 456, time.FixedZone("x", 3600))),
	[]any{}, []any(nil), []string{}, []string(nil), []string{"a", "<b>"}, []byte("bytes"), []byte(nil),
	map[string]any{}, map[string]any(nil), result{"b": 1, "a": []any{map[string]any{"z": nil, "y": "<"}}},
	map[string]string{"k": "v"}, json.RawMessage(`{"raw" : [1, 2]}`), []map[string]any{{"a": 1}, nil}, []map[string]any(nil),
	[]tagOut{}, []tagOut(nil), []tagOut{{TagID: "tag-1", TagName: "<t>\u2028", Color: "#fff"}, {}},
}

func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	for _, v := range append(jsonCases, map[string]any{"all": jsonCases, "\u2028<key>": 1, "": 0}) {
		want, werr := json.Marshal(v)
		got, gerr := appendJSON(nil, v)
		if (werr != nil) != (gerr != nil) || !bytes.Equal(got, want) {
			t.Errorf("appendJSON(%#v) = %s, %v; encoding/json: %s, %v", v, got, gerr, want, werr)
		}
	}
}

// FuzzAppendJSON builds answer trees from the fuzzer's bytes and compares appendJSON with
// encoding/json on each.
func FuzzAppendJSON(f *testing.F) {
	f.Add([]byte("seed"), uint64(1))
	f.Add([]byte("\xff<\u2028>\x00\"\\"), uint64(7))
	f.Fuzz(func(t *testing.T, s []byte, seed uint64) {
		rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
		v := randomAnswer(rng, string(s), 3)
		want, werr := json.Marshal(v)
		got, gerr := appendJSON(nil, v)
		if (werr != nil) != (gerr != nil) || !bytes.Equal(got, want) {
			t.Fatalf("appendJSON = %s, %v; encoding/json: %s, %v", got, gerr, want, werr)
		}
	})
}

// randomAnswer returns a random tree of the values answers hold, with strings cut from s.
func randomAnswer(rng *rand.Rand, s string, depth int) any {
	str := func() string {
		if len(s) == 0 {
			return ""
		}
		i := rng.IntN(len(s))
		return s[i : i+rng.IntN(len(s)-i+1)]
	}
	kind := rng.IntN(10)
	if depth == 0 {
		kind %= 6
	}
	switch kind {
	case 0:
		return str()
	case 1:
		return rng.Int64() - rng.Int64()
	case 2:
		return rng.IntN(2) == 0
	case 3:
		return jtime(time.Unix(rng.Int64N(4e9), 0))
	case 4:
		return jsonCases[rng.IntN(len(jsonCases))]
	case 5:
		return []string{str(), str()}
	case 6, 7:
		m := map[string]any{}
		for range rng.IntN(5) {
			m[str()] = randomAnswer(rng, s, depth-1)
		}
		return m
	default:
		l := make([]any, rng.IntN(4))
		for i := range l {
			l[i] = randomAnswer(rng, s, depth-1)
		}
		return l
	}
}

func BenchmarkEncodeAnswer(b *testing.B) {
	page := make([]any, 100)
	for i := range page {
		page[i] = map[string]any{"instance_id": "i-12345678", "instance_name": "web <1>", "status": "running",
			"vcpus_current": 2, "create_time": jtime(time.Now()), "vxnets": []any{map[string]any{"vxnet_id": "vxnet-0", "private_ip": "10.0.0.1"}},
			"security_group": map[string]any{"security_group_id": "sg-1", "is_default": 1}, "tags": []any{}}
	}
	items := make([]map[string]any, len(page))
	for i := range page {
		items[i] = page[i].(map[string]any)
	}
	res := result{"instance_set": items, "total_count": 100}
	b.Run("appendJSON", func(b *testing.B) {
		for b.Loop() {
			if _, err := encodeSuccess("DescribeInstances", res); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		for b.Loop() {
			if _, err := json.Marshal(res); err != nil {
				b.Fatal(err)
			}
		}
	})
}
