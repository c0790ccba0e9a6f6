// Package wszerotest tests wszero handlers through real connections, in the
// spirit of net/http/httptest: it serves a *wszero.Server on a loopback
// address, dials clients to it, and waits for their messages with a
// timeout.
//
//	func TestAdd(t *testing.T) {
//		s := wszero.New()
//		s.On("add", func(c *wszero.Client, p struct{ A, B int }) int { return p.A + p.B })
//		c := wszerotest.NewServer(t, s).Dial()
//		require.Equal(t, 5.0, c.Call("add", wszero.Params{"a": 2, "b": 3}))
//	}
//
// Its functions fail the test with t.Fatalf and a message that says what
// was expected and what came instead, so they return no errors; like
// t.FailNow, they must be called from the goroutine running the test.
// Everything they start is stopped by t.Cleanup.
package wszerotest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wszero/wszero"
	"github.com/wszero/wszero/client"
)

// DefaultTimeout is how long a Client waits for a message, an answer or a
// connection before it fails the test.
const DefaultTimeout = 5 * time.Second

// Server is a wszero.Server listening on a loopback address.
type Server struct {
	// URL is the WebSocket endpoint, like "ws://127.0.0.1:41234/ws".
	URL string
	// HTTP is the underlying httptest server, for plain HTTP requests.
	HTTP *httptest.Server
	// Timeout is the Timeout of the clients Dial makes from now on;
	// DefaultTimeout unless set.
	Timeout time.Duration

	t         testing.TB
	server    *wszero.Server
	closeOnce sync.Once
}

// NewServer serves s on 127.0.0.1 at a free port until the test ends, when
// s is shut down (its clients are told it is going away and its disconnect
// handlers run) and the listener closed.
func NewServer(t testing.TB, s *wszero.Server) *Server {
	t.Helper()
	ts := httptest.NewServer(s)
	srv := &Server{
		URL:     "ws" + strings.TrimPrefix(ts.URL, "http") + "/ws",
		HTTP:    ts,
		Timeout: DefaultTimeout,
		t:       t,
		server:  s,
	}
	t.Cleanup(srv.Close)
	return srv
}

// Close shuts the wszero server down and closes the listener. The test's
// cleanup calls it; call it earlier to test what clients see when the
// server goes away. Calling it again does nothing.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), s.Timeout)
		defer cancel()
		if err := s.server.Shutdown(ctx); err != nil {
			s.t.Errorf("wszerotest: shutting the server down: %v", err)
		}
		s.HTTP.Close()
	})
}

// Dial connects a new client to the server, failing the test if it cannot.
// opts go to client.Dial (headers, say); the client logs to the test's log
// unless opts say otherwise. The client is closed when the test ends.
func (s *Server) Dial(opts ...client.Option) *Client {
	s.t.Helper()
	c := &Client{Timeout: s.Timeout, t: s.t, arrived: make(chan struct{}, 1)}
	ctx, cancel := context.WithTimeout(context.Background(), s.Timeout)
	defer cancel()
	base := []client.Option{client.WithLogger(testLogger(s.t)), client.WithUnhandled(c.record)}
	conn, err := client.Dial(ctx, s.URL, append(base, opts...)...)
	if err != nil {
		s.t.Fatalf("wszerotest: dialling %s: %v", s.URL, err)
	}
	c.conn = conn
	s.t.Cleanup(c.Close)
	// The server's connect handler runs on its handler loop after the
	// handshake: one round trip through the loop makes sure that it has
	// run, so that what it did (a welcome, a group) is there when Dial
	// returns. No handler has this op; the server answers with an error.
	var se *client.ServerError
	if err := c.call(readyOp, nil, nil); !errors.As(err, &se) {
		s.t.Fatalf("wszerotest: dialling %s: the server did not answer: %v", s.URL, err)
	}
	return c
}

// readyOp is the op Dial calls to learn that the server is ready.
const readyOp = "wszerotest: ready?"

// Client is a client connected to a Server. It keeps every message from
// the server that no handler of its Conn takes, for Expect.
type Client struct {
	// Timeout bounds each wait: for a message, an answer, the end of the
	// connection. It is the Server's Timeout when Dial made the client.
	Timeout time.Duration

	t       testing.TB
	conn    *client.Conn
	mu      sync.Mutex
	got     []message
	arrived chan struct{} // signalled when a message is recorded
}

// message is one message from the server, kept until it is expected.
type message struct {
	op     string
	params wszero.Params
}

// record keeps a message; it runs on the connection's handler goroutine.
func (c *Client) record(op string, p wszero.Params) {
	c.mu.Lock()
	c.got = append(c.got, message{op, p})
	c.mu.Unlock()
	select {
	case c.arrived <- struct{}{}:
	default:
	}
}

// Conn returns the underlying connection, for what the test helpers do not
// cover: On, Call with a typed result, Done.
func (c *Client) Conn() *client.Conn { return c.conn }

// Send sends {"op": op, …params} to the server, failing the test if it
// cannot.
func (c *Client) Send(op string, params any) {
	c.t.Helper()
	if err := c.conn.Send(op, params); err != nil {
		c.t.Fatalf("wszerotest: sending %q: %v", op, err)
	}
}

// Call calls op with params and returns the handler's result as decoded
// from JSON (numbers are float64, objects map[string]any, lists []any;
// nil when the handler returns nothing). It fails the test when the call
// fails or takes longer than the Timeout.
func (c *Client) Call(op string, params any) any {
	c.t.Helper()
	var result any
	if err := c.call(op, params, &result); err != nil {
		c.t.Fatalf("wszerotest: calling %q: %v", op, err)
	}
	return result
}

// CallError calls op with params, expecting the server to answer with an
// error, and returns the error's message. It fails the test when the call
// succeeds, or fails in another way.
func (c *Client) CallError(op string, params any) string {
	c.t.Helper()
	var result json.RawMessage
	err := c.call(op, params, &result)
	var se *client.ServerError
	switch {
	case err == nil:
		c.t.Fatalf("wszerotest: calling %q: expected an error, but it returned %s", op, result)
	case !errors.As(err, &se):
		c.t.Fatalf("wszerotest: calling %q: expected an error from the server, got: %v", op, err)
	}
	return se.Message
}

func (c *Client) call(op string, params, result any) error {
	ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
	defer cancel()
	err := c.conn.Call(ctx, op, params, result)
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("no answer within %v", c.Timeout)
	}
	return err
}

// Expect waits for the next message from the server whose op is op and
// returns its parameters (every key but "op"). Messages with other ops
// stay for their own Expect. It fails the test after the Timeout, or when
// the connection ends first, saying what arrived instead.
func (c *Client) Expect(op string) wszero.Params {
	c.t.Helper()
	timer := time.NewTimer(c.Timeout)
	defer timer.Stop()
	for {
		if p, ok := c.take(op); ok {
			return p
		}
		select {
		case <-c.arrived:
		case <-c.conn.Done():
			if p, ok := c.take(op); ok {
				return p
			}
			c.t.Fatalf("wszerotest: waiting for %q: the connection ended (%v); %s", op, c.conn.Err(), c.received())
		case <-timer.C:
			c.t.Fatalf("wszerotest: no %q message within %v; %s", op, c.Timeout, c.received())
		}
	}
}

// ExpectError waits for an "error" message that answers no call, as
// Expect does, and returns its text.
func (c *Client) ExpectError() string {
	c.t.Helper()
	p := c.Expect("error")
	msg, ok := p["msg"].(string)
	if !ok {
		c.t.Fatalf(`wszerotest: the "error" message has no "msg" text: %v`, p)
	}
	return msg
}

// take removes and returns the first kept message for op.
func (c *Client) take(op string) (wszero.Params, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, m := range c.got {
		if m.op == op {
			c.got = append(c.got[:i], c.got[i+1:]...)
			return m.params, true
		}
	}
	return nil, false
}

// received lists the kept messages, for a failure message.
func (c *Client) received() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.got) == 0 {
		return "nothing else arrived"
	}
	lines := make([]string, len(c.got))
	for i, m := range c.got {
		p, _ := json.Marshal(m.params)
		lines[i] = fmt.Sprintf("\t%q %s", m.op, p)
	}
	return "what arrived instead:\n" + strings.Join(lines, "\n")
}

// Close closes the connection and waits until its handlers have stopped.
// The test's cleanup calls it; calling it again does nothing.
func (c *Client) Close() {
	c.conn.Close()
	timer := time.NewTimer(c.Timeout)
	defer timer.Stop()
	select {
	case <-c.conn.Done():
	case <-timer.C:
		c.t.Errorf("wszerotest: a handler of the client was still running %v after Close", c.Timeout)
	}
}

// testLogger logs to the test's log, which shows with -v or on failure.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// testWriter writes to t.Log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
