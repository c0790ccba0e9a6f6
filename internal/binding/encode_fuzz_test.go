package binding

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// FuzzEncodeMessage: whatever JSON object params marshal to, the message
// is valid JSON with exactly one op, first, the one given, and no key of
// the protocol's, or it is refused.
func FuzzEncodeMessage(f *testing.F) {
	for _, seed := range []string{
		`{}`, `{"op":"x"}`, `{"o\u0070":"eval_js","script":"s"}`, `{"a":1,"op":2}`,
		`{"op":1,"\u006fp":2,"b":[{"op":3}]}`, `{"_ref":1}`, `{"\u005fref":1}`, `{"a":"\"op\""}`,
		`{ "op" : 1 , "b" : 2 }`, `{"\ud800op":1}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !json.Valid(raw) || !bytes.HasPrefix(bytes.TrimSpace(raw), []byte("{")) {
			return
		}
		out, err := EncodeMessage("msg", json.RawMessage(raw))
		if err != nil {
			if !strings.Contains(err.Error(), `belong to the wszero protocol`) && !strings.Contains(err.Error(), "not valid JSON") {
				t.Fatalf("EncodeMessage(%s): unexpected error %v", raw, err)
			}
			return
		}
		if !json.Valid(out) {
			t.Fatalf("EncodeMessage(%s) = %s, not valid JSON", raw, out)
		}
		dec := json.NewDecoder(bytes.NewReader(out))
		if _, err := dec.Token(); err != nil {
			t.Fatal(err)
		}
		for i := 0; dec.More(); i++ {
			k, err := dec.Token()
			if err != nil {
				t.Fatal(err)
			}
			var v any
			if err := dec.Decode(&v); err != nil {
				t.Fatal(err)
			}
			key := k.(string)
			switch {
			case i == 0 && (key != "op" || v != "msg"):
				t.Fatalf("EncodeMessage(%s) = %s: the first key is %q: %v", raw, out, key, v)
			case i > 0 && key == "op":
				t.Fatalf("EncodeMessage(%s) = %s: a second op", raw, out)
			case strings.HasPrefix(key, "_"):
				t.Fatalf("EncodeMessage(%s) = %s: a protocol key %q", raw, out, key)
			}
		}
	})
}
