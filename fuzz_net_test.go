package wszero

// Fuzz targets that go through a real connection: raw frames (FuzzFrames),
// binding compared with encoding/json (FuzzBinding), and sequences of
// messages checked against the protocol's promises (FuzzProtocol). Their
// seed corpora are in testdata/fuzz/<target>; .ci/run fuzzes each for a
// bounded time.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

// fuzzTimeout bounds each wait in the network fuzz targets.
const fuzzTimeout = 5 * time.Second

// startFuzzServer serves s on loopback for the whole fuzz run.
func startFuzzServer(f *testing.F, s *Server) *httptest.Server {
	ts := httptest.NewServer(s)
	f.Cleanup(func() {
		_ = s.Shutdown(f.Context())
		ts.Close()
	})
	return ts
}

// fuzzDialer keeps the fuzz targets' connections small.
var fuzzDialer = &websocket.Dialer{HandshakeTimeout: fuzzTimeout, ReadBufferSize: 1024, WriteBufferSize: 1024}

// checkFrame checks one frame the server sent: valid UTF-8, a JSON object
// with a string op, one of the ops the fuzz servers send. It returns the
// frame's keys.
func checkFrame(t *testing.T, sent, frame []byte) map[string]json.RawMessage {
	t.Helper()
	if !utf8.Valid(frame) {
		t.Fatalf("after %q the server sent %q, which is not UTF-8: a browser would drop the connection", sent, frame)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(frame, &m); err != nil || m == nil {
		t.Fatalf("after %q the server sent %q, not a JSON object", sent, frame)
	}
	var op string
	if json.Unmarshal(m["op"], &op) != nil {
		t.Fatalf("after %q the server sent %q, whose op is not a string", sent, frame)
	}
	switch op {
	case "error":
		var msg string
		if json.Unmarshal(m["msg"], &msg) != nil || msg == "" {
			t.Fatalf("after %q the server sent an error with no message: %q", sent, frame)
		}
	case "_reply":
		if _, ok := m["result"]; !ok || m["_ref"] == nil {
			t.Fatalf("after %q the server sent a reply without result or _ref: %q", sent, frame)
		}
	case "_ping", "joined":
	default:
		t.Fatalf("after %q the server sent op %q: %q", sent, op, frame)
	}
	return m
}

// noPanics fails the test if the server logged a panic.
func noPanics(t *testing.T, log *logRecorder, input []byte) {
	t.Helper()
	if logged := log.take(); strings.Contains(logged, "panicked") {
		t.Fatalf("handling %q, the server logged a panic:\n%s", input, logged)
	}
}

// FuzzFrames writes arbitrary bytes on an upgraded connection, as a broken
// or hostile client would: whatever they are, the server answers with
// well-formed frames and ends with a close frame, and nothing panics.
// Seeds are client frames with the mask bit set and a zero key, so that
// mutations of their payloads stay well-masked.
func FuzzFrames(f *testing.F) {
	for _, seed := range [][]byte{
		rawFrame(0x81, []byte(`{"op":"add","a":1,"b":2,"_ref":1}`)),
		rawFrame(0x82, []byte(`{"op":"ping"}`)),
		append(rawFrame(0x01, []byte(`{"op":"ec`)), rawFrame(0x80, []byte(`ho","x":1,"_ref":"r"}`))...),
		append(append(rawFrame(0x01, []byte(`{"op":`)), rawFrame(0x89, []byte("p"))...), rawFrame(0x80, []byte(`"ping","_ref":2}`))...),
		rawFrame(0x89, []byte("hello")),
		rawFrame(0x8A, nil),
		rawFrame(0x88, []byte{0x03, 0xE8, 'b', 'y', 'e'}),
		rawFrame(0x88, []byte{0x03, 0xE7}),
		rawFrame(0x83, nil),
		rawFrame(0xC1, []byte("{}")),
		{0x81, 0x05, 'h', 'e', 'l', 'l', 'o'},
		{0x81, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0},
		append(rawFrame(0x81, []byte(`{"op":"ping","_ref":1}`)), rawFrame(0x81, []byte("{\"op\":\"\xff\"}"))...),
	} {
		f.Add(seed)
	}
	log := &logRecorder{}
	s := fuzzServer(log)
	ts := startFuzzServer(f, s)
	url := wsURL(ts, "/ws")
	f.Fuzz(func(t *testing.T, data []byte) {
		conn, _, err := fuzzDialer.Dial(url, nil)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer conn.Close()
		raw := conn.UnderlyingConn()
		if _, err := raw.Write(data); err != nil {
			t.Fatalf("write: %v", err)
		}
		// Nothing more comes: the server reads what there is, then EOF.
		_ = raw.(*net.TCPConn).CloseWrite()
		_ = conn.SetReadDeadline(time.Now().Add(fuzzTimeout))
		conn.SetPingHandler(func(string) error { return nil })
		for {
			kind, frame, err := conn.ReadMessage()
			if err != nil {
				var ce *websocket.CloseError
				var ne net.Error
				switch {
				case errors.As(err, &ce):
				case errors.As(err, &ne) && ne.Timeout():
					t.Fatalf("after %q the server neither answered nor closed within %v", data, fuzzTimeout)
				default:
					t.Fatalf("after %q the connection ended without a close frame: %v", data, err)
				}
				break
			}
			if kind != websocket.TextMessage {
				t.Fatalf("after %q the server sent a frame of type %d", data, kind)
			}
			checkFrame(t, data, frame)
		}
		noPanics(t, log, data)
	})
}

// fuzzPoint and fuzzTarget are what FuzzBinding binds.
type fuzzPoint struct {
	X, Y int
}

type fuzzTarget struct {
	S  string  `json:"s,omitempty"`
	I  int     `json:"i,omitempty"`
	I8 *int8   `json:"i8"`
	U  uint16  `json:"u,omitempty"`
	F  float64 `json:"f,omitempty"`
	F4 float32 `json:"f4,omitempty"`
	B  *bool
	L  []string          `json:"l,omitempty"`
	M  map[string]int    `json:"m,omitempty"`
	P  *fuzzPoint        `json:"p,omitempty"`
	Q  fuzzPoint         `json:"q,omitempty"`
	A  any               `json:"a,omitempty"`
	G  [][]uint8         `json:"g,omitempty"`
	N  map[string]*int64 `json:"n,omitempty"`
}

// fuzzTargetKeys are fuzzTarget's keys.
var fuzzTargetKeys = map[string]bool{"s": true, "i": true, "i8": true, "u": true, "f": true, "f4": true, "b": true,
	"l": true, "m": true, "p": true, "q": true, "a": true, "g": true, "n": true}

// FuzzBinding sends a message's keys to a handler that takes a struct and
// returns it, and compares what the handler got with what encoding/json
// makes of the same keys. Binding is stricter than encoding/json (unknown
// and missing keys are errors), so only messages that bind are compared;
// an error must name the op.
func FuzzBinding(f *testing.F) {
	for _, seed := range []string{
		`{"s":"hi","i":1}`,
		`{"S":"hi","I":-7,"i8":12,"u":65535,"f":1.5,"f4":3.25,"b":true}`,
		`{"s":"","i":0,"l":["a","b"],"m":{"x":1},"p":{"x":1,"y":2},"q":{"X":3}}`,
		`{"s":"x","i":2,"a":[1,{"b":null}],"g":[[1,2],[255]],"n":{"k":null,"j":9007199254740993}}`,
		`{"s":"x","i":2.0}`,
		`{"s":"x","i":1e2}`,
		`{"s":null,"i":1}`,
		`{"s":"x","i":1,"i8":null,"b":null,"p":null}`,
		`{"s":"x","i":1,"unknown":1}`,
		`{"s":"x"}`,
		`{"s":"é\u00e9\ud83d\ude00","i":1}`,
		`{"s":"x","i":1,"u":-1}`,
		`{"s":"x","i":1,"f4":1e39}`,
		`{"s":1,"i":"1"}`,
	} {
		f.Add([]byte(seed))
	}
	log := &logRecorder{}
	s := New(WithLogger(slog.New(slog.NewTextHandler(log, nil))), WithRateLimit(0, 0), WithMaxConnectionsPerIP(0))
	s.On("typed", func(c *Client, p fuzzTarget) fuzzTarget { return p })
	ts := startFuzzServer(f, s)
	url := wsURL(ts, "/ws")
	var conn *websocket.Conn
	ref := 0
	f.Fuzz(func(t *testing.T, data []byte) {
		var keys map[string]json.RawMessage
		if !utf8.Valid(data) || json.Unmarshal(data, &keys) != nil || keys == nil {
			return // not a UTF-8 JSON object: FuzzProtocol and FuzzFrames cover those
		}
		// Half the inputs keep only keys the struct has, so that most of
		// those bind and are compared; the other half meet unknown keys.
		known := len(data)%2 == 1
		for k := range keys {
			if k == "op" || strings.HasPrefix(k, "_") || known && !fuzzTargetKeys[strings.ToLower(k)] {
				delete(keys, k)
			}
		}
		body, _ := json.Marshal(keys) // keys sorted, each once
		ref++
		msg := fmt.Sprintf(`{"op":"typed","_ref":%d`, ref)
		if len(body) > 2 {
			msg += "," + string(body[1:])
		} else {
			msg += "}"
		}
		if conn == nil {
			var err error
			if conn, _, err = fuzzDialer.Dial(url, nil); err != nil {
				t.Fatalf("dial: %v", err)
			}
			conn.SetPingHandler(func(string) error { return nil })
		}
		if err := conn.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatalf("write: %v", err)
		}
		var answer struct {
			Op     string
			Ref    int `json:"_ref"`
			Msg    string
			Result json.RawMessage
		}
		_ = conn.SetReadDeadline(time.Now().Add(fuzzTimeout))
		for answer.Ref != ref {
			_, frame, err := conn.ReadMessage()
			if err != nil {
				conn.Close()
				conn = nil
				t.Fatalf("%s: no answer: %v", msg, err)
			}
			checkFrame(t, []byte(msg), frame)
			answer.Ref = 0
			if err := json.Unmarshal(frame, &answer); err != nil {
				t.Fatalf("%s: the answer %q: %v", msg, frame, err)
			}
		}
		noPanics(t, log, []byte(msg))
		if answer.Op == "error" {
			if !strings.HasPrefix(answer.Msg, "typed") {
				t.Fatalf("%s: the error %q does not name the op first", msg, answer.Msg)
			}
			return
		}
		var want fuzzTarget
		if err := json.Unmarshal(body, &want); err != nil {
			t.Fatalf("%s: bound to %s, but encoding/json refuses it: %v", msg, answer.Result, err)
		}
		wantJSON, _ := json.Marshal(want)
		if !bytes.Equal(wantJSON, answer.Result) {
			var got fuzzTarget
			_ = json.Unmarshal(answer.Result, &got)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s:\nbound to        %s\nencoding/json:  %s", msg, answer.Result, wantJSON)
			}
		}
	})
	f.Cleanup(func() {
		if conn != nil {
			conn.Close()
		}
	})
}

// protocolServer is fuzzServer with a guarded op and one that joins a
// group, and no rate limit, for FuzzProtocol.
func protocolServer(log *logRecorder) *Server {
	s := New(WithLogger(slog.New(slog.NewTextHandler(log, nil))), WithRateLimit(0, 0), WithMaxConnectionsPerIP(0), WithMaxGroupsPerClient(3),
		WithGuard("kick", func(c *Client) error {
			if !c.InGroup("teachers") {
				return errors.New("only teachers may kick")
			}
			return nil
		}))
	s.On("ping", func(c *Client) string { return "pong" })
	s.On("add", func(c *Client, p struct{ A, B int }) int { return p.A + p.B })
	s.On("echo", func(c *Client, p Params) Params { return p })
	s.On("fail", func(c *Client) error { return errors.New("it failed") })
	s.On("join", func(c *Client, p struct{ Group string }) error {
		if err := c.AddToGroup(p.Group); err != nil {
			return err
		}
		return s.BroadcastTo(p.Group, "joined", Params{"group": p.Group})
	})
	s.On("kick", func(c *Client, p struct{ Who string }) string { return "kicked " + p.Who })
	return s
}

// FuzzProtocol sends a sequence of messages (the input's lines, each a
// frame) on a fresh connection, then a last call, and checks what comes
// back against the protocol's promises: every frame is a JSON object the
// client can read; each message gets at most one answer, answers come in
// the order the messages were sent, and an answer carries the _ref of the
// message it answers, or none; the connection stays open.
func FuzzProtocol(f *testing.F) {
	for _, seed := range []string{
		"{\"op\":\"ping\",\"_ref\":1}\n{\"op\":\"add\",\"a\":1,\"b\":2,\"_ref\":2}",
		"{\"op\":\"kick\",\"who\":\"bob\",\"_ref\":1}\n{\"op\":\"join\",\"group\":\"teachers\"}\n{\"op\":\"kick\",\"who\":\"bob\",\"_ref\":2}",
		"{\"op\":\"kick\",\"whom\":1,\"_ref\":\"k\"}",
		"{\"op\":\"join\",\"group\":\"a\"}\n{\"op\":\"join\",\"group\":\"b\"}\n{\"op\":\"join\",\"group\":\"c\"}\n{\"op\":\"join\",\"group\":\"d\",\"_ref\":1}",
		"{\"op\":\"join\",\"group\":\"_x\",\"_ref\":1}",
		"{\"op\":\"echo\",\"x\":[1,2],\"_ref\":\"a\"}\n{\"op\":\"echo\",\"_ref\":\"a\"}",
		"{\"op\":\"fail\",\"_ref\":1.5e3}\n{\"op\":\"fail\"}",
		"not json\n[1]\n{\"op\":5}\n{\"_ref\":1}",
		"{\"op\":\"_pong\"}\n{\"op\":\"_reply\",\"_ref\":1}\n{\"op\":\"connect\",\"_ref\":2}",
		"{\"op\":\"ping\",\"_ref\":\"\xff\"}",
		"{\"op\":\"ping\",\"_ref\":{}}\n{\"op\":\"ping\",\"_ref\":null}",
		"{\"op\":\"add\",\"a\":1,\"_ref\":-0}\n{\"op\":\"add\",\"a\":1,\"b\":1e400,\"_ref\":3}",
	} {
		f.Add([]byte(seed))
	}
	log := &logRecorder{}
	s := protocolServer(log)
	ts := startFuzzServer(f, s)
	url := wsURL(ts, "/ws")
	const end = `"__end"`
	f.Fuzz(func(t *testing.T, data []byte) {
		lines := bytes.Split(data, []byte("\n"))
		if len(lines) > 32 {
			lines = lines[:32]
		}
		conn, _, err := fuzzDialer.Dial(url, nil)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer conn.Close()
		conn.SetPingHandler(func(string) error { return nil })
		for _, l := range lines {
			if err := conn.WriteMessage(websocket.TextMessage, l); err != nil {
				t.Fatalf("write: %v", err)
			}
		}
		if err := conn.WriteMessage(websocket.TextMessage, []byte(`{"op":"ping","_ref":`+end+`}`)); err != nil {
			t.Fatalf("write: %v", err)
		}
		// The _ref each line carries, when it has one: the server echoes
		// it exactly.
		refs := make([]json.RawMessage, len(lines))
		for i, l := range lines {
			var m map[string]json.RawMessage
			if json.Unmarshal(l, &m) == nil {
				refs[i] = m["_ref"]
			}
		}
		_ = conn.SetReadDeadline(time.Now().Add(fuzzTimeout))
		next, answers := 0, 0 // the first line an answer may still be for
		for {
			_, frame, err := conn.ReadMessage()
			if err != nil {
				t.Fatalf("%q: the connection ended before the last call was answered: %v", data, err)
			}
			m := checkFrame(t, data, frame)
			if string(m["_ref"]) == end {
				break
			}
			if op := string(m["op"]); op != `"error"` && op != `"_reply"` {
				continue // a broadcast
			}
			answers++
			if answers > len(lines) {
				t.Fatalf("%q: more answers than messages", data)
			}
			ref, ok := m["_ref"]
			if !ok {
				continue // an error that answers no call
			}
			found := false
			for ; next < len(lines); next++ {
				if refs[next] != nil && bytes.Equal(refs[next], ref) {
					found = true
					next++
					break
				}
			}
			if !found {
				t.Fatalf("%q: the answer %q has a _ref that no later message sent", data, frame)
			}
		}
		noPanics(t, log, data)
	})
}
