package wszero

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testTimeout bounds every wait in the tests.
const testTimeout = 5 * time.Second

// quiet silences the server's log in tests unless -v is given.
func quiet() Option {
	if testing.Verbose() {
		return WithLogger(slog.Default())
	}
	return WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// startServer runs s on a loopback httptest server, shut down when the test ends.
func startServer(t testing.TB, s *Server) *httptest.Server {
	t.Helper()
	ts := httptest.NewServer(s)
	shutDownAtEnd(t, s, ts)
	return ts
}

// shutDownAtEnd shuts s down, then closes ts, when the test ends.
func shutDownAtEnd(t testing.TB, s *Server, ts *httptest.Server) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		require.NoError(t, s.Shutdown(ctx))
		ts.Close()
	})
}

// newTestServer makes a quiet server with opts and serves it.
func newTestServer(t testing.TB, opts ...Option) (*Server, *httptest.Server) {
	s := New(append([]Option{quiet()}, opts...)...)
	return s, startServer(t, s)
}

// peer is a gorilla client connected to a test server.
type peer struct {
	t    testing.TB
	conn *websocket.Conn
}

// wsURL turns an httptest URL into its WebSocket endpoint.
func wsURL(ts *httptest.Server, path string) string {
	return "ws" + strings.TrimPrefix(ts.URL, "http") + path
}

// dial connects a peer to ts's /ws endpoint.
func dial(t testing.TB, ts *httptest.Server) *peer {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial(wsURL(ts, "/ws"), nil)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return &peer{t: t, conn: conn}
}

// send writes one message, given as a Go value or a raw JSON string.
func (p *peer) send(msg any) {
	p.t.Helper()
	var data []byte
	switch m := msg.(type) {
	case string:
		data = []byte(m)
	case []byte:
		data = m
	default:
		var err error
		data, err = json.Marshal(m)
		require.NoError(p.t, err)
	}
	require.NoError(p.t, p.conn.WriteMessage(websocket.TextMessage, data))
}

// read returns the next message, failing the test after testTimeout.
func (p *peer) read() map[string]any {
	p.t.Helper()
	require.NoError(p.t, p.conn.SetReadDeadline(time.Now().Add(testTimeout)))
	_, data, err := p.conn.ReadMessage()
	require.NoError(p.t, err)
	var m map[string]any
	require.NoError(p.t, json.Unmarshal(data, &m), "frame %s", data)
	return m
}

// expect reads messages until one has the given op, and returns it.
func (p *peer) expect(op string) map[string]any {
	p.t.Helper()
	for {
		m := p.read()
		if m["op"] == op {
			return m
		}
	}
}

// call sends a message with a _ref and returns the reply or error to it.
func (p *peer) call(ref int, msg map[string]any) map[string]any {
	p.t.Helper()
	msg["_ref"] = ref
	p.send(msg)
	for {
		m := p.read()
		if r, ok := m["_ref"].(float64); ok && int(r) == ref {
			return m
		}
	}
}

// closeErr reads until the connection ends and returns its close error.
func (p *peer) closeErr() *websocket.CloseError {
	p.t.Helper()
	require.NoError(p.t, p.conn.SetReadDeadline(time.Now().Add(testTimeout)))
	for {
		_, _, err := p.conn.ReadMessage()
		if err != nil {
			ce, ok := err.(*websocket.CloseError)
			require.True(p.t, ok, "expected a close frame, got %v", err)
			return ce
		}
	}
}

// pingThenShutdown checks that the server s, serving at addr through a
// ListenAndServe that reports to served, answers a "ping" call, then shuts
// it down: the client hears 1001 and ListenAndServe returns
// http.ErrServerClosed.
func pingThenShutdown(t *testing.T, s *Server, addr string, served <-chan error) {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws", nil)
	require.NoError(t, err)
	defer conn.Close()
	p := &peer{t: t, conn: conn}
	require.Equal(t, "pong", p.call(1, map[string]any{"op": "ping"})["result"])

	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	require.Equal(t, websocket.CloseGoingAway, p.closeErr().Code)
	require.NoError(t, receive(t, shut, "Shutdown"))
	require.ErrorIs(t, receive(t, served, "ListenAndServe to return"), http.ErrServerClosed)
}
