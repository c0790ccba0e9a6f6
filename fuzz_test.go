package wszero

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
	"github.com/wszero/wszero/internal/binding"
	"github.com/wszero/wszero/internal/protocol"
)

// logRecorder keeps a server's log lines.
type logRecorder struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// take returns what was logged since the last take, and forgets it.
func (l *logRecorder) take() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.buf.String()
	l.buf.Reset()
	return s
}

func (l *logRecorder) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// fuzzServer is a server with handlers of every shape, never started: the
// fuzz target drives its decode and run directly.
func fuzzServer(log *logRecorder) *Server {
	s := New(WithLogger(slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	type inner struct {
		X, Y int
		Tag  string `json:"tag,omitempty"`
	}
	s.On("connect", func(c *Client) {})
	s.On("ping", func(c *Client) string { return "pong" })
	s.On("fail", func(c *Client) error { return errors.New("it failed") })
	s.On("add", func(c *Client, p struct{ A, B int }) int { return p.A + p.B })
	s.On("small", func(c *Client, p struct {
		N int8
		U uint8 `json:"u,omitempty"`
		I int32 `default:"-5"`
	}) (int, error) {
		return int(p.N) + int(p.U) + int(p.I), nil
	})
	s.On("post", func(c *Client, p *struct {
		Text    string
		Channel *string
		Tags    []string       `json:"tags,omitempty"`
		Count   int            `default:"1"`
		Ratio   float32        `default:"0.5"`
		Flags   []bool         `default:"[true,false]"`
		Pos     inner          `json:"pos,omitempty"`
		Pts     []inner        `json:"pts,omitempty"`
		Extra   map[string]any `json:"extra,omitempty"`
		Any     any            `json:"any,omitempty"`
		When    *uint64
		Grid    [][]float64 `json:"grid,omitempty"`
	}) error {
		if p.Count == 0 && p.Text == "fail" {
			return errors.New("count is 0")
		}
		return nil
	})
	s.On("embed", func(c *Client, p struct {
		*Base
		*point        // unexported: its fields are not bound
		Text   string `default:"x"`
	}) string {
		return p.Name + p.Text
	})
	s.On("echo", func(c *Client, p Params) (any, error) { return p, nil })
	s.On("map", func(c *Client, p map[string]any) map[string]any { return p })
	return s
}

// FuzzDecodeFlat checks that the quick path for flat messages reads every
// message it takes as the careful path does.
func FuzzDecodeFlat(f *testing.F) {
	for _, seed := range []string{
		`{"op":"add","a":2,"b":3,"_ref":1}`, `{"op":"add","A":2,"b":3.5}`, `{"op":"add","a":2,"a":3}`,
		`{"op":"small","n":300,"u":-1,"_ref":"x"}`, `{"op":"post","text":"hi","count":null,"when":7}`,
		`{"op":"embed","name":"Ann"}`, `{"op":"echo","x":1e400,"y":"s","z":true,"n":null}`, `{"op":"map","x":-0,"y":"","y":1}`,
		`{"op":"ping","_ref":true}`, `{"op":"connect"}`, `{"op":"fail","_x":1}`,
	} {
		f.Add([]byte(seed))
	}
	s := fuzzServer(&logRecorder{})
	f.Fuzz(func(t *testing.T, data []byte) {
		quick, ok := s.decodeFlat(data)
		if !ok {
			return
		}
		careful, err := s.decodeCarefully(data)
		require.NoError(t, err, "%q: the quick path took a message the careful one refuses", data)
		require.Same(t, careful.h, quick.h, "%q", data)
		require.Equal(t, careful.op, quick.op, "%q", data)
		require.Equal(t, string(careful.ref), string(quick.ref), "%q", data)
		require.Equal(t, careful.arg, quick.arg, "%q", data)
	})
}

func FuzzDecodeAndBind(f *testing.F) {
	for _, seed := range []string{
		`{"op":"add","a":2,"b":3,"_ref":1}`,
		`{"op":"add","a":2,"b":3}`,
		`{"op":"ping","_ref":"p"}`,
		`{"op":"fail"}`,
		`{"op":"post","text":"hi","tags":["a"],"pos":{"x":1},"_ref":2}`,
		`{"op":"echo","a":[1,{"b":null}],"_x":1,"_ref":3}`,
		`{"op":"small","n":300,"_ref":4}`,
		`{"op":"embed","name":"Ann","_ref":5}`,
		`{"op":"ad"}`,
		`[]`,
	} {
		f.Add([]byte(seed))
	}
	log := &logRecorder{}
	s := fuzzServer(log)
	f.Fuzz(func(t *testing.T, data []byte) {
		// A client that is never connected: with writing set, no writer
		// starts, and what the server sends it stays in its queue.
		c := offlineClient(s, "fuzz")
		m := s.decode(data)
		switch {
		case m.problem == unworded:
			t.Fatalf("decode(%q) gave an error without words", data)
		case m.problem != "" && m.ref != nil && !binding.IsScalar(m.ref):
			t.Fatalf("decode(%q) kept the _ref %q", data, m.ref)
		case m.empty() && !protocol.Unnumbered(m.op):
			t.Fatalf("decode(%q) found no handler and no error", data)
		}
		s.dispatch(c, m) // as the handler loop does
		if logged := log.take(); logged != "" {
			t.Fatalf("handling %q logged:\n%s", data, logged)
		}
		checkAnswer(t, data, m.ref, m.problem != "", c.link.send.frames)
	})
}

// checkAnswer checks what the server sent for the message data: one valid
// frame answering the call ref, or, when the message was not a call, at most
// one error frame.
func checkAnswer(t *testing.T, data, ref []byte, failed bool, frames []outFrame) {
	t.Helper()
	if ref == nil && len(frames) == 0 && !failed {
		return
	}
	if len(frames) != 1 {
		t.Fatalf("%q: the server sent %d frames, want 1", data, len(frames))
	}
	out := frames[0].data
	if !utf8.Valid(out) {
		t.Fatalf("%q: the answer %q is not UTF-8: a browser would drop the connection", data, out)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("%q: the answer %q is not a JSON object: %v", data, out, err)
	}
	if !bytes.Equal(m["_ref"], ref) {
		t.Fatalf("%q: the answer %q has _ref %q, want %q", data, out, m["_ref"], ref)
	}
	switch op := string(m["op"]); op {
	case `"_reply"`:
		if failed || ref == nil {
			t.Fatalf("%q: unexpected reply %q", data, out)
		}
		if _, ok := m["result"]; !ok || len(m) != 3 {
			t.Fatalf("%q: the reply %q is not {op, _ref, result}", data, out)
		}
	case `"error"`:
		var msg string
		if json.Unmarshal(m["msg"], &msg) != nil || msg == "" {
			t.Fatalf("%q: the error %q has no message", data, out)
		}
	default:
		t.Fatalf("%q: the answer %q has op %s", data, out, op)
	}
}
