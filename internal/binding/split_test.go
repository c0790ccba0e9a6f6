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

// checkSplitFlat fails when SplitFlat accepts in but encoding/json does
// not, or reads it otherwise. It reports whether SplitFlat accepted in.
func checkSplitFlat(t *testing.T, in []byte) bool {
	fields, ok := SplitFlat(in, nil)
	if !ok {
		return false
	}
	var want map[string]json.RawMessage
	if err := json.Unmarshal(in, &want); err != nil || want == nil {
		t.Fatalf("%q: SplitFlat took what encoding/json refuses: %v", in, err)
	}
	got := map[string]json.RawMessage{}
	for _, f := range fields {
		got[string(f.Key)] = f.Value // the last of duplicate keys wins, as in encoding/json
	}
	require.Equal(t, want, got, "%q", in)
	return true
}

func TestSplitFlat(t *testing.T) {
	for _, in := range []string{
		`{}`, ` { } `, `{"op":"say","text":"hi"}`, "{\n\"k\" : true , \"n\":null,\"x\":-1.5e3}",
		`{"a":1,"a":2}`, `{"n":0,"m":-0.25,"e":1E+9,"f":false}`, `{"_ref":7,"op":"add","a":1,"b":2}`,
	} {
		require.True(t, checkSplitFlat(t, []byte(in)), "%q is flat", in)
	}
	for _, in := range []string{
		`{"a":{"b":1}}`, `{"a":[1]}`, `{"\u006fp":"x"}`, `{"a":"x\"y"}`, `{"a":"é"}`, "{\"\xff\":1}",
		`[1]`, `"s"`, `null`, `{"a":}`, `{"a":1`, ``, `{"a":1,}`, `{,}`, `{"a" 1}`, `{"a":01}`,
		`{"a":1.}`, `{"a":.5}`, `{"a":1e}`, `{"a":-}`, `{"a":tru}`, `{"a":nul}`, `{"a":1}x`, `{"a":1}}`,
		`{"a":1 2}`, `{"a":"b"c}`, "{\"a\":\"\t\"}",
	} {
		require.False(t, checkSplitFlat(t, []byte(in)), "%q is not flat, or not JSON", in)
	}
}

// FuzzSplitFlat checks that SplitFlat accepts only JSON, and reads it as
// encoding/json does.
func FuzzSplitFlat(f *testing.F) {
	f.Add([]byte(`{"op":"say","text":"hi","n":-1.5e3,"ok":true,"x":null}`))
	f.Add([]byte(`{"a":01}`))
	f.Fuzz(func(t *testing.T, data []byte) { checkSplitFlat(t, data) })
}
