package redisbroker

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/wszero/wszero"
)

func TestEnvelopeRoundTrip(t *testing.T) {
	long := strings.Repeat("x", 300) // a length of two varint bytes
	for _, tc := range []struct {
		name string
		to   wszero.Target
		body string
	}{
		{"everyone", wszero.Target{}, `{"op":"hi"}`},
		{"group", wszero.Target{Group: "red team"}, `{"op":"hi"}`},
		{"client", wszero.Target{Client: "abc.def"}, `{"op":"hi"}`},
		{"both", wszero.Target{Group: long, Client: "abc." + long}, ""},
		{"binary", wszero.Target{Group: "\x00\xff"}, "\x00\x01\xfe\xff"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := appendFrame(nil, "nodeA", tc.to, []byte(tc.body))
			require.LessOrEqual(t, len(data), frameSize("nodeA", tc.to, []byte(tc.body)))
			e, ok := decodeEnvelope(string(data))
			require.True(t, ok)
			require.Equal(t, envelope{kind: kindFrame, from: "nodeA", to: tc.to, body: tc.body}, e)
		})
	}
	e, ok := decodeEnvelope(string(appendSignal(nil, "nodeB", []byte("\x00p"))))
	require.True(t, ok)
	require.Equal(t, envelope{kind: kindSignal, from: "nodeB", body: "\x00p"}, e)
	require.Equal(t, "S\x05nodeB\x00p", string(appendSignal(nil, "nodeB", []byte("\x00p"))), "the layout the package doc gives")
	require.Equal(t, "F\x01n\x03a.b\x01gbody", string(appendFrame(nil, "n", wszero.Target{Client: "a.b", Group: "g"}, []byte("body"))))
}

func TestEnvelopeRefusesWhatItDoesNotKnow(t *testing.T) {
	frame := string(appendFrame(nil, "nodeA", wszero.Target{Group: "g", Client: "nodeA.c"}, []byte("x")))
	for _, msg := range []string{
		"",
		"F",
		"F\x00",                           // no sender
		"F\x05node",                       // a sender cut short
		"S\x41" + strings.Repeat("n", 65), // a sender too long
		"F\x01n",                          // no client
		"F\x01n\x05abc",                   // a client cut short
		"F\x01n\x00",                      // no group
		"F\x01n\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", // a varint too long
		"F\x01n\x80\x00\x00", // a varint longer than it needs to be
		"X\x01nbody",         // an unknown kind
		frame[:len("F\x05nodeA\x07nodeA")],
	} {
		_, ok := decodeEnvelope(msg)
		require.False(t, ok, "%q", msg)
	}
}

func FuzzDecodeEnvelope(f *testing.F) {
	f.Add(string(appendFrame(nil, "nodeA", wszero.Target{Group: "g", Client: "nodeA.c"}, []byte(`{"op":"x"}`))))
	f.Add(string(appendSignal(nil, "nodeA", []byte("p{}"))))
	f.Add("F\x01n\x80\x01")
	f.Fuzz(func(t *testing.T, msg string) {
		e, ok := decodeEnvelope(msg)
		if !ok {
			return
		}
		// What decodes encodes back to the same bytes.
		var again []byte
		switch e.kind {
		case kindFrame:
			again = appendFrame(nil, e.from, e.to, []byte(e.body))
		case kindSignal:
			again = appendSignal(nil, e.from, []byte(e.body))
		default:
			t.Fatalf("kind %q decoded", e.kind)
		}
		if string(again) != msg {
			t.Fatalf("%q decoded to %+v, which encodes to %q", msg, e, again)
		}
	})
}
