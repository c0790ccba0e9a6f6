package binding

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// SplitObject must agree with encoding/json on every input.
func TestSplitObject(t *testing.T) {
	for _, in := range []string{
		`{}`, ` { } `, `{"op":"say","text":"hi"}`, `{"a":{"b":[1,{"c":"}"}]},"d":"\"]"}`,
		`{"a":1,"a":2}`, "{\n\"k\" : true , \"n\":null,\"x\":-1.5e3}", `{"\u006fp":"x"}`,
		"{\"\xff\":1}", `[1]`, `"s"`, `null`, `{"a":}`, `{"a":1`, ``, `{"a":"x\\"}`,
	} {
		var want map[string]json.RawMessage
		wantErr := json.Unmarshal([]byte(in), &want)
		got, ok := SplitObject([]byte(in))
		if wantErr != nil || want == nil {
			if ok {
				require.Nil(t, want, "%q", in)
				require.Empty(t, got, "%q", in)
			}
			continue
		}
		require.True(t, ok, "%q", in)
		require.Equal(t, want, got, "%q", in)
	}
}

// FuzzSplitObject compares SplitObject with encoding/json.
func FuzzSplitObject(f *testing.F) {
	f.Add([]byte(`{"op":"say","text":"hi","n":[1,{"x":"]"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var want map[string]json.RawMessage
		wantErr := json.Unmarshal(data, &want)
		got, ok := SplitObject(data)
		if !ok {
			if wantErr == nil && want != nil {
				t.Fatalf("%q: SplitObject refused what encoding/json takes", data)
			}
			return
		}
		if wantErr != nil {
			t.Fatalf("%q: SplitObject took what encoding/json refuses: %v", data, wantErr)
		}
		require.Equal(t, len(want), len(got), "%q", data)
		for k, v := range want {
			require.Equal(t, string(v), string(got[k]), "%q key %q", data, k)
		}
	})
}
