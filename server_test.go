package wszero

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
)

// ---- helpers for the connection, send-path, group and loop tests ----

// logSink collects a server's log lines; it is safe to write from any
// goroutine, and a test can wait for a line to appear.
type logSink struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{}
}

func newLogSink() *logSink { return &logSink{changed: make(chan struct{}, 1)} }

func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.buf.Write(p)
	l.mu.Unlock()
	select {
	case l.changed <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (l *logSink) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// logger returns a debug-level text logger writing to l.
func (l *logSink) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// option makes a server log to l.
func (l *logSink) option() Option { return WithLogger(l.logger()) }

// waitFor waits until the log holds every one of parts, and returns the log.
func (l *logSink) waitFor(t testing.TB, parts ...string) string {
	t.Helper()
	deadline := time.NewTimer(testTimeout)
	defer deadline.Stop()
	for {
		text := l.String()
		missing := false
		for _, p := range parts {
			missing = missing || !strings.Contains(text, p)
		}
		if !missing {
			return text
		}
		select {
		case <-l.changed:
		case <-deadline.C:
			t.Fatalf("the log never showed %q; it holds:\n%s", parts, text)
		}
	}
}

// has reports whether the log holds s.
func (l *logSink) has(s string) bool { return strings.Contains(l.String(), s) }

// receive waits for a value on ch, failing the test after testTimeout.
func receive[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(testTimeout):
		t.Fatalf("timed out waiting for %s", what)
	}
	var zero T
	return zero
}

// trackConnects registers a connect handler that reports each client.
func trackConnects(s *Server) <-chan *Client {
	ch := make(chan *Client, 1000)
	s.On("connect", func(c *Client) { ch <- c })
	return ch
}

// trackDisconnects registers a disconnect handler that reports each client.
func trackDisconnects(s *Server) <-chan *Client {
	ch := make(chan *Client, 1000)
	s.On("disconnect", func(c *Client) { ch <- c })
	return ch
}

// dialClient connects a peer and returns it with the server's Client for
// it, as reported by a trackConnects channel. Dial one at a time.
func dialClient(t testing.TB, ts *httptest.Server, connects <-chan *Client) (*peer, *Client) {
	t.Helper()
	p := dial(t, ts)
	return p, receive(t, connects, "the connect handler")
}

// dialURL connects a peer to url with the given header and dialer.
func dialURL(t testing.TB, d *websocket.Dialer, url string, h http.Header) *peer {
	t.Helper()
	conn, resp, err := d.Dial(url, h)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return &peer{t: t, conn: conn}
}

// smallBuffers shrinks the kernel's send buffers on accepted connections,
// so that a peer that does not read holds up its writer after some tens of
// kilobytes. (Shrinking the peer's receive buffer after connecting would
// leave its TCP window stuck shut for a while once it reads again.)
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(4 << 10)
	}
	return c, err
}

// startSmallBufferServer is startServer with small server-side send buffers.
func startSmallBufferServer(t testing.TB, s *Server) *httptest.Server {
	t.Helper()
	ts := httptest.NewUnstartedServer(s)
	ts.Listener = smallBuffers{ts.Listener}
	ts.Start()
	shutDownAtEnd(t, s, ts)
	return ts
}

// readInto reads messages on its own goroutine and hands them over, so that
// a test can wait for a message and for control frames at once. The
// channel closes when the connection ends; the error is then in *err.
func (p *peer) readInto() (<-chan map[string]any, *error) {
	ch := make(chan map[string]any, 1000)
	var rerr error
	go func() {
		defer close(ch)
		for {
			_ = p.conn.SetReadDeadline(time.Now().Add(testTimeout))
			_, data, err := p.conn.ReadMessage()
			if err != nil {
				rerr = err
				return
			}
			var m map[string]any
			if err := json.Unmarshal(data, &m); err != nil {
				rerr = err
				return
			}
			ch <- m
		}
	}()
	return ch, &rerr
}

// readNumbered reads messages with op until one numbered last; they must
// carry "i" = 0, 1, … in order.
func (p *peer) readNumbered(op string, from, last int) {
	p.t.Helper()
	for i := from; i <= last; i++ {
		m := p.read()
		require.Equal(p.t, op, m["op"], "message %d", i)
		require.Equal(p.t, float64(i), m["i"], "messages arrive in order")
	}
}

// ---- the server as an http.Handler ----

func TestOrigins(t *testing.T) {
	tests := []struct {
		name    string
		allowed []string
		origin  string // "same" for the server's own origin
		ok      bool
	}{
		{"no Origin header (a program)", nil, "", true},
		{"same origin", nil, "same", true},
		{"foreign origin", nil, "http://evil.example", false},
		{"host glob matches a subdomain", []string{"*.example.com"}, "https://app.example.com", true},
		{"host glob ignores the scheme", []string{"*.example.com"}, "http://app.example.com", true},
		{"host glob does not match the bare domain", []string{"*.example.com"}, "https://example.com", false},
		{"host glob does not match another domain", []string{"*.example.com"}, "https://app.example.org", false},
		{"any port on localhost", []string{"localhost:*"}, "http://localhost:5173", true},
		{"localhost glob is not another host", []string{"localhost:*"}, "http://127.0.0.1:5173", false},
		{"host and port exactly", []string{"localhost:5173"}, "http://localhost:5173", true},
		{"host and port, other port", []string{"localhost:5173"}, "http://localhost:3000", false},
		{"full origin", []string{"https://app.example.com"}, "https://app.example.com", true},
		{"full origin, other scheme", []string{"https://app.example.com"}, "http://app.example.com", false},
		{"full origin glob", []string{"https://*.example.com"}, "https://a.example.com", true},
		{"case does not matter", []string{"App.Example.com"}, "https://app.EXAMPLE.com", true},
		{"star allows everyone", []string{"*"}, "https://anything.example.net:8443", true},
		{"one of several", []string{"a.example", "b.example"}, "http://b.example", true},
		{"a page opened from a file", nil, "null", false},
		{"a page opened from a file, allowed", []string{"null"}, "null", true},
		{"an origin without a host, like a file's", nil, "file://", false},
		{"an origin without a host, allowed as null", []string{"null"}, "file://", true},
		{"null does not allow a host", []string{"null"}, "http://evil.example", false},
		{"star allows a file's page too", []string{"*"}, "null", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log := newLogSink()
			s := New(log.option(), WithAllowedOrigins(tt.allowed...))
			s.On("ping", func(c *Client) string { return "pong" })
			ts := startServer(t, s)
			h := http.Header{}
			switch tt.origin {
			case "":
			case "same":
				h.Set("Origin", ts.URL)
			default:
				h.Set("Origin", tt.origin)
			}
			conn, resp, err := websocket.DefaultDialer.Dial(wsURL(ts, "/ws"), h)
			if tt.ok {
				require.NoError(t, err)
				t.Cleanup(func() { conn.Close() })
				p := &peer{t: t, conn: conn}
				require.Equal(t, "pong", p.call(1, map[string]any{"op": "ping"})["result"])
				return
			}
			require.ErrorIs(t, err, websocket.ErrBadHandshake)
			require.Equal(t, http.StatusForbidden, resp.StatusCode)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(tt.origin, "//") && tt.origin != "file://" {
				require.Contains(t, string(body), "does not accept WebSocket connections from pages at "+tt.origin)
			} else {
				require.Contains(t, string(body), "Open the address the server printed (like http://localhost:8000) instead of the file")
			}
			require.Contains(t, log.String(), "another origin")

			// The hint works: a server that does as it says lets the page in.
			hint := regexp.MustCompile(`wszero\.WithAllowedOrigins\("([^"]*)"\)`).FindStringSubmatch(string(body))
			require.NotNil(t, hint, "the body says how to allow it: %s", body)
			allowing := New(quiet(), WithAllowedOrigins(hint[1]))
			allowing.On("ping", func(c *Client) string { return "pong" })
			conn, _, err = websocket.DefaultDialer.Dial(wsURL(startServer(t, allowing), "/ws"), h)
			require.NoError(t, err, "the hint %s did not let the page in", hint[0])
			conn.Close()
		})
	}
	t.Run("an empty pattern panics at once, saying what to write", func(t *testing.T) {
		require.PanicsWithValue(t, `wszero.WithAllowedOrigins(""): an empty pattern matches nothing; name a host like "localhost:5173", or "null" for pages opened from a file`,
			func() { WithAllowedOrigins("") })
	})
	t.Run("a bad pattern panics at once", func(t *testing.T) {
		require.PanicsWithValue(t, `wszero.WithAllowedOrigins: "[" is not a valid pattern: syntax error in pattern`,
			func() { WithAllowedOrigins("[") })
	})
}

func TestMounting(t *testing.T) {
	tests := []struct {
		name  string
		mount func(mux *http.ServeMux, s *Server)
		path  string
	}{
		{"under a prefix with StripPrefix", func(mux *http.ServeMux, s *Server) {
			mux.Handle("/game/", http.StripPrefix("/game", s))
		}, "/game/ws"},
		{"under a prefix with StripPrefix and a trailing slash", func(mux *http.ServeMux, s *Server) {
			mux.Handle("/play/", http.StripPrefix("/play/", s))
		}, "/play/ws"},
		{"at its own path without StripPrefix", func(mux *http.ServeMux, s *Server) {
			mux.Handle("/chat/ws", s)
		}, "/chat/ws"},
		{"at the root", func(mux *http.ServeMux, s *Server) { mux.Handle("/", s) }, "/ws"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(quiet())
			s.On("add", func(c *Client, p struct{ A, B int }) int { return p.A + p.B })
			mux := http.NewServeMux()
			mux.HandleFunc("/other", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "other") })
			tt.mount(mux, s)
			ts := httptest.NewServer(mux)
			t.Cleanup(func() {
				require.NoError(t, s.Shutdown(context.Background()))
				ts.Close()
			})
			p := dialURL(t, websocket.DefaultDialer, wsURL(ts, tt.path), nil)
			require.Equal(t, 5.0, p.call(1, map[string]any{"op": "add", "a": 2, "b": 3})["result"])
			status, body := get(t, ts.URL+"/other")
			require.Equal(t, http.StatusOK, status)
			require.Equal(t, "other", body, "the rest of the mux still works")
			status, body = get(t, ts.URL+tt.path)
			require.Equal(t, http.StatusBadRequest, status, "a plain GET on the endpoint")
			require.Contains(t, body, "open the web page instead")
		})
	}
}

// get fetches url and returns the status and body.
func get(t testing.TB, url string) (int, string) {
	t.Helper()
	resp, err := (&http.Client{Timeout: testTimeout}).Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

func TestHTTPPaths(t *testing.T) {
	t.Run("without static files", func(t *testing.T) {
		_, ts := newTestServer(t)
		status, body := get(t, ts.URL+"/ws")
		require.Equal(t, http.StatusBadRequest, status)
		require.Contains(t, body, "WebSocket endpoint: open the web page instead")
		for _, path := range []string{"/", "/index.html", "/wss", "/ws/x"} {
			status, _ := get(t, ts.URL+path)
			require.Equal(t, http.StatusNotFound, status, path)
		}
	})
	t.Run("with WithStatic", func(t *testing.T) {
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, "index.html"), []byte("<h1>home</h1>"), 0o644))
		require.NoError(t, os.Mkdir(filepath.Join(dir, "css"), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "css", "site.css"), []byte("h1{}"), 0o644))
		s, ts := newTestServer(t, WithStatic(dir))
		s.On("ping", func(c *Client) string { return "pong" })
		for path, want := range map[string]string{"/": "<h1>home</h1>", "/css/site.css": "h1{}"} {
			status, body := get(t, ts.URL+path)
			require.Equal(t, http.StatusOK, status, path)
			require.Equal(t, want, body, path)
		}
		status, _ := get(t, ts.URL+"/missing.html")
		require.Equal(t, http.StatusNotFound, status)
		status, body := get(t, ts.URL+"/ws")
		require.Equal(t, http.StatusBadRequest, status, "/ws stays the endpoint")
		require.Contains(t, body, "WebSocket endpoint")
		require.Equal(t, "pong", dial(t, ts).call(1, map[string]any{"op": "ping"})["result"])
	})
}

func TestClientFiles(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "app.ts"), []byte("const n: number = 41\nconsole.log(n + 1)\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "broken.ts"), []byte("const = ;\n"), 0o644))
	log := newLogSink()
	s := New(log.option(), WithStatic(dir))
	mux := http.NewServeMux()
	mux.Handle("/game/", http.StripPrefix("/game", s))
	mux.Handle("/", s)
	ts := httptest.NewServer(mux)
	t.Cleanup(func() {
		require.NoError(t, s.Shutdown(context.Background()))
		ts.Close()
	})
	for _, path := range []string{"/wszero.js", "/wszero.mjs", "/wszero.d.ts", "/game/wszero.js"} {
		t.Run(path, func(t *testing.T) {
			resp, err := http.Get(ts.URL + path)
			require.NoError(t, err)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.NotEmpty(t, body)
			require.NotEmpty(t, resp.Header.Get("ETag"))
			if strings.HasSuffix(path, ".d.ts") {
				require.Contains(t, resp.Header.Get("Content-Type"), "typescript")
			} else {
				require.Contains(t, resp.Header.Get("Content-Type"), "javascript")
			}
			req, _ := http.NewRequest(http.MethodGet, ts.URL+path, nil)
			req.Header.Set("If-None-Match", resp.Header.Get("ETag"))
			resp, err = http.DefaultClient.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, http.StatusNotModified, resp.StatusCode)
		})
	}
	t.Run("TypeScript in the static folder is bundled", func(t *testing.T) {
		status, body := get(t, ts.URL+"/app.ts")
		require.Equal(t, http.StatusOK, status)
		require.Contains(t, body, "console.log(n + 1)")
		require.NotContains(t, body, ": number")
	})
	t.Run("a build error shows in the page and the log", func(t *testing.T) {
		status, body := get(t, ts.URL+"/broken.ts")
		require.Equal(t, http.StatusOK, status)
		require.Contains(t, body, "broken.ts does not build")
		log.waitFor(t, "broken.ts does not build")
	})
}

func TestListenAndServe(t *testing.T) {
	s := New(quiet())
	s.On("ping", func(c *Client) string { return "pong" })
	addrs := make(chan net.Addr, 1)
	s.onServe = func(a net.Addr) { addrs <- a }
	served := make(chan error, 1)
	go func() { served <- s.ListenAndServe("127.0.0.1:0") }()
	addr := receive(t, addrs, "the server to listen")

	pingThenShutdown(t, s, addr.String(), served)
	require.ErrorIs(t, s.ListenAndServe("127.0.0.1:0"), http.ErrServerClosed, "a server cannot be restarted")

	t.Run("an address in use is an error", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer l.Close()
		s := New(quiet())
		require.Error(t, s.ListenAndServe(l.Addr().String()))
		require.NoError(t, s.Shutdown(context.Background()))
	})
}

// TestServe: a server started on a listener the program opened, on a port
// the system chose, without blocking; Shutdown closes the listener.
func TestServe(t *testing.T) {
	s := New(quiet())
	s.On("ping", func(c *Client) string { return "pong" })
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()

	pingThenShutdown(t, s, l.Addr().String(), served)
	_, err = net.Dial("tcp", l.Addr().String())
	require.Error(t, err, "Shutdown closed the listener")

	t.Run("after Shutdown it returns at once and closes the listener", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		require.ErrorIs(t, s.Serve(l), http.ErrServerClosed)
		_, err = net.Dial("tcp", l.Addr().String())
		require.Error(t, err)
	})
}

// ---- shutdown ----

func TestShutdownDeliversQueuedMessages(t *testing.T) {
	const clients, messages = 5, 500
	s, ts := newTestServer(t)
	connects := trackConnects(s)
	var disconnected atomic.Int32
	s.On("disconnect", func(c *Client) { disconnected.Add(1) })
	peers := make([]*peer, clients)
	for i := range peers {
		var c *Client
		peers[i], c = dialClient(t, ts, connects)
		for n := 0; n < messages; n++ {
			require.NoError(t, c.Send("n", Params{"i": n}))
		}
	}
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(context.Background()) }()
	for _, p := range peers {
		p.readNumbered("n", 0, messages-1)
		ce := p.closeErr()
		require.Equal(t, websocket.CloseGoingAway, ce.Code)
		require.Equal(t, "the server is shutting down", ce.Text)
	}
	require.NoError(t, receive(t, done, "Shutdown"))
	require.EqualValues(t, clients, disconnected.Load(), "every disconnect handler ran before Shutdown returned")
	require.Empty(t, s.Clients())

	t.Run("new connections are refused", func(t *testing.T) {
		_, resp, err := websocket.DefaultDialer.Dial(wsURL(ts, "/ws"), nil)
		require.ErrorIs(t, err, websocket.ErrBadHandshake)
		resp.Body.Close()
		require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	})
	t.Run("twice is fine", func(t *testing.T) {
		require.NoError(t, s.Shutdown(context.Background()))
	})
	t.Run("sending after shutdown", func(t *testing.T) {
		require.NoError(t, s.Broadcast("late", nil), "no one is left to reach")
		stopped := s.Every(time.Millisecond, func() { t.Error("a timer ran after Shutdown") })
		stopped.Stop()
		s.After(0, func() { t.Error("a timer ran after Shutdown") })
	})
}

func TestShutdownWithExpiredContext(t *testing.T) {
	// A peer that reads nothing while a lot is queued for it: a graceful
	// close would wait for the write timeout.
	s := New(quiet(), WithWriteTimeout(time.Minute))
	connects := trackConnects(s)
	disconnects := trackDisconnects(s)
	ts := startSmallBufferServer(t, s)
	dial(t, ts) // reads nothing
	c := receive(t, connects, "connect")
	big := strings.Repeat("x", 8<<10)
	for i := 0; i < 200; i++ {
		require.NoError(t, c.Send("big", Params{"i": i, "pad": big}))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	err := s.Shutdown(ctx)
	require.ErrorIs(t, err, context.Canceled)
	require.Less(t, time.Since(start), testTimeout/2, "the connections were closed at once")
	require.Equal(t, c, receive(t, disconnects, "the disconnect handler"))
}

func TestShutdownWithoutConnections(t *testing.T) {
	s := New(quiet())
	require.NoError(t, s.Shutdown(context.Background()))
	require.NoError(t, s.Shutdown(context.Background()))
	// goleak in TestMain checks that no loop goroutine is left behind.
}

func TestShutdownStopsTimers(t *testing.T) {
	s := New(quiet())
	ticks := make(chan struct{}, 100)
	s.Every(time.Millisecond, func() {
		select {
		case ticks <- struct{}{}:
		default:
		}
	})
	receive(t, ticks, "a tick")
	require.NoError(t, s.Shutdown(context.Background()))
}

func TestShutdownRacingUpgrades(t *testing.T) {
	// Clients connect while the server shuts down: each is either refused
	// or told goodbye with 1001, and nothing is left running.
	s, ts := newTestServer(t)
	var disconnects atomic.Int32
	s.On("disconnect", func(c *Client) { disconnects.Add(1) })
	const n = 20
	results := make(chan error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, resp, err := websocket.DefaultDialer.Dial(wsURL(ts, "/ws"), nil)
			if err != nil {
				if resp == nil {
					results <- err
					return
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusServiceUnavailable {
					results <- errors.New("refused with " + resp.Status)
					return
				}
				results <- nil
				return
			}
			defer conn.Close()
			_ = conn.SetReadDeadline(time.Now().Add(testTimeout))
			for {
				if _, _, err = conn.ReadMessage(); err != nil {
					break
				}
			}
			if ce, ok := err.(*websocket.CloseError); !ok || ce.Code != websocket.CloseGoingAway {
				results <- errors.New("ended with " + err.Error())
				return
			}
			results <- nil
		}()
	}
	require.NoError(t, s.Shutdown(context.Background()))
	wg.Wait()
	close(results)
	for err := range results {
		require.NoError(t, err)
	}
}

// ---- logging ----

func TestLogging(t *testing.T) {
	// The default logger is slog.Default(); point it at a sink for the test.
	old := slog.Default()
	defaultSink := newLogSink()
	slog.SetDefault(defaultSink.logger())
	t.Cleanup(func() { slog.SetDefault(old) })

	tooBig := func(t *testing.T, opts ...Option) {
		s := New(append(opts, WithMaxMessageSize(10))...)
		ts := startServer(t, s)
		p := dial(t, ts)
		p.send(`{"op":"x","text":"far too long"}`)
		require.Equal(t, websocket.CloseMessageTooBig, p.closeErr().Code)
		require.NoError(t, s.Shutdown(context.Background()))
	}
	t.Run("slog.Default by default", func(t *testing.T) {
		tooBig(t)
		defaultSink.waitFor(t, "message too big")
	})
	t.Run("WithLogger(nil) silences", func(t *testing.T) {
		before := defaultSink.String()
		tooBig(t, WithLogger(nil))
		require.Equal(t, before, defaultSink.String())
	})
	t.Run("a handler panic is logged with its op", func(t *testing.T) {
		log := newLogSink()
		s := New(log.option())
		s.On("boom", func(c *Client) { panic("kaboom") })
		s.On("ping", func(c *Client) string { return "pong" })
		p := dial(t, startServer(t, s))
		r := p.call(1, map[string]any{"op": "boom"})
		require.Equal(t, "error", r["op"])
		require.NotContains(t, r["msg"], "kaboom", "the panic's value stays in the server's log")
		text := log.waitFor(t, "handler panicked", "op=boom", "kaboom")
		require.Contains(t, text, "server_test.go", "the stack shows where")
		require.Equal(t, "pong", p.call(2, map[string]any{"op": "ping"})["result"], "the connection goes on")
	})
}
