package client_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/wszero/wszero"
	"github.com/wszero/wszero/client"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testTimeout bounds every wait in the tests.
const testTimeout = 5 * time.Second

// quiet is the servers' logger in tests: silent unless -v is given.
func quiet() wszero.Option {
	if testing.Verbose() {
		return wszero.WithLogger(slog.Default())
	}
	return wszero.WithLogger(nil)
}

// quietClient is the clients' logger in tests: silent unless -v is given.
func quietClient() *slog.Logger {
	if testing.Verbose() {
		return slog.Default()
	}
	return nil
}

// newServer makes a quiet wszero server with opts.
func newServer(opts ...wszero.Option) *wszero.Server {
	return wszero.New(append([]wszero.Option{quiet()}, opts...)...)
}

// serve runs h on a loopback httptest server until the test ends, then
// shuts s down (when h is a wszero server) and closes the listener.
func serve(t testing.TB, s *wszero.Server, h http.Handler) *httptest.Server {
	t.Helper()
	if h == nil {
		h = s
	}
	ts := httptest.NewServer(h)
	t.Cleanup(func() { shutdown(t, s, ts) })
	return ts
}

// shutdown stops s and ts.
func shutdown(t testing.TB, s *wszero.Server, ts *httptest.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if s != nil {
		require.NoError(t, s.Shutdown(ctx))
	}
	ts.Close()
}

// wsURL is the WebSocket endpoint of an httptest server.
func wsURL(ts *httptest.Server) string {
	return "ws" + strings.TrimPrefix(ts.URL, "http") + "/ws"
}

// ctx returns a context that ends with the test or after testTimeout.
func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return c
}

// dial connects to url, logging to log (when given), and closes the
// connection when the test ends, waiting for its goroutines.
func dial(t testing.TB, url string, opts ...client.Option) *client.Conn {
	t.Helper()
	c, err := client.Dial(ctx(t), url, append([]client.Option{client.WithLogger(quietClient())}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() {
		c.Close()
		waitDone(t, c)
	})
	return c
}

// waitDone waits until c has ended.
func waitDone(t testing.TB, c *client.Conn) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(testTimeout):
		t.Fatalf("the connection did not end within %v", testTimeout)
	}
}

// receive waits for a value on ch.
func receive[T any](t testing.TB, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(testTimeout):
		t.Fatalf("nothing arrived within %v", testTimeout)
		panic("unreachable")
	}
}

// logRecorder is a slog.Handler that keeps the lines logged, so that a
// test can wait for one.
type logRecorder struct {
	mu      sync.Mutex
	lines   []string
	changed chan struct{} // closed and replaced whenever a line is added
}

func newLogRecorder() *logRecorder { return &logRecorder{changed: make(chan struct{})} }

// logger returns a logger that records into r.
func (r *logRecorder) logger() *slog.Logger { return slog.New(r) }

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", rec.Level, rec.Message)
	rec.Attrs(func(a slog.Attr) bool {
		if a.Key != "stack" {
			fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		}
		return true
	})
	r.mu.Lock()
	r.lines = append(r.lines, b.String())
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
	return nil
}

func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *logRecorder) WithGroup(string) slog.Handler      { return r }

// waitFor waits until n lines containing text have been logged, and
// returns the last of them.
func (r *logRecorder) waitFor(t testing.TB, text string, n int) string {
	t.Helper()
	timeout := time.After(testTimeout)
	for {
		r.mu.Lock()
		var found []string
		for _, l := range r.lines {
			if strings.Contains(l, text) {
				found = append(found, l)
			}
		}
		changed := r.changed
		all := strings.Join(r.lines, "\n")
		r.mu.Unlock()
		if len(found) >= n {
			return found[n-1]
		}
		select {
		case <-changed:
		case <-timeout:
			t.Fatalf("%d log lines with %q did not come within %v; logged:\n%s", n, text, testTimeout, all)
		}
	}
}

// all returns the lines logged so far.
func (r *logRecorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.lines...)
}

// count returns how many lines containing text have been logged.
func (r *logRecorder) count(text string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, l := range r.lines {
		if strings.Contains(l, text) {
			n++
		}
	}
	return n
}

// rawServer runs fn for each WebSocket connection to a plain gorilla
// server: a stand-in for a wszero server, to test the protocol frame by
// frame. The connection is closed when fn returns.
func rawServer(t testing.TB, fn func(*websocket.Conn)) *httptest.Server {
	t.Helper()
	return rawServerWith(t, websocket.Upgrader{}, fn)
}

// rawServerWith is rawServer with the upgrader up: one that answers the
// session subprotocol, to script a session by hand.
func rawServerWith(t testing.TB, up websocket.Upgrader, fn func(*websocket.Conn)) *httptest.Server {
	t.Helper()
	var wg sync.WaitGroup
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Counted before the upgrade, while ts.Close still waits for this
		// request, so that Add never races with Wait.
		wg.Add(1)
		defer wg.Done()
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer conn.Close()
		fn(conn)
	}))
	t.Cleanup(func() {
		ts.Close()
		wg.Wait()
	})
	return ts
}
