package client_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	stdlog "log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wszero/wszero"
	"github.com/wszero/wszero/client"
)

func TestWithHeader(t *testing.T) {
	s := newServer()
	s.On("whoami", func(c *wszero.Client) any { return c.Get("user") })
	// An auth check in front of the server, as an application would mount
	// it: the token must come with the request that opens the connection.
	headers := make(chan http.Header, 1)
	auth := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		headers <- r.Header.Clone()
		if r.Header.Get("Authorization") != "Bearer s3cret" {
			http.Error(w, "log in first", http.StatusUnauthorized)
			return
		}
		s.ServeHTTP(w, r)
	})
	ts := serve(t, s, auth)

	t.Run("sent", func(t *testing.T) {
		c := dial(t, wsURL(ts), client.WithHeader("Authorization", "Bearer s3cret"),
			client.WithHeader("X-Trace", "a"), client.WithHeader("X-Trace", "b"))
		h := receive(t, headers)
		require.Equal(t, "Bearer s3cret", h.Get("Authorization"))
		require.Equal(t, []string{"a", "b"}, h.Values("X-Trace"))
		require.NoError(t, c.Call(ctx(t), "whoami", nil, nil))
	})
	t.Run("missing", func(t *testing.T) {
		_, err := client.Dial(ctx(t), wsURL(ts))
		receive(t, headers)
		var he *client.HandshakeError
		require.ErrorAs(t, err, &he)
		require.Equal(t, &client.HandshakeError{URL: wsURL(ts), StatusCode: http.StatusUnauthorized, Message: "log in first"}, he)
		require.EqualError(t, err, "client: "+wsURL(ts)+" refused the WebSocket connection: 401 Unauthorized: log in first")
	})
}

func TestOriginHeader(t *testing.T) {
	s := newServer(wszero.WithAllowedOrigins("app.example.com"))
	s.On("ping", func(c *wszero.Client) string { return "pong" })
	ts := serve(t, s, nil)
	cases := []struct {
		name, origin string
		refused      bool
	}{
		{"no origin: a program", "", false},
		{"allowed", "https://app.example.com", false},
		{"same host", "http://" + strings.TrimPrefix(ts.URL, "http://"), false},
		{"another site", "https://evil.example.net", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var opts []client.Option
			if tc.origin != "" {
				opts = append(opts, client.WithHeader("Origin", tc.origin))
			}
			c, err := client.Dial(ctx(t), wsURL(ts), opts...)
			if tc.refused {
				var he *client.HandshakeError
				require.ErrorAs(t, err, &he)
				require.Equal(t, http.StatusForbidden, he.StatusCode)
				require.Equal(t, "client: "+wsURL(ts)+" refused the WebSocket connection: 403 Forbidden: "+
					"This server does not accept WebSocket connections from pages at https://evil.example.net. "+
					`If that page is yours, allow it with wszero.WithAllowedOrigins("evil.example.net").`, err.Error())
				return
			}
			require.NoError(t, err)
			defer c.Close()
			var r string
			require.NoError(t, c.Call(ctx(t), "ping", nil, &r))
			require.Equal(t, "pong", r)
		})
	}
}

func TestWithTLSConfig(t *testing.T) {
	s := newServer()
	s.On("ping", func(c *wszero.Client) string { return "pong" })
	ts := httptest.NewUnstartedServer(s)
	ts.Config.ErrorLog = stdlog.New(io.Discard, "", 0) // the refused handshakes below
	ts.StartTLS()
	t.Cleanup(func() { shutdown(t, s, ts) })
	url := "wss" + strings.TrimPrefix(ts.URL, "https") + "/ws"

	t.Run("trusted", func(t *testing.T) {
		roots := x509.NewCertPool()
		roots.AddCert(ts.Certificate())
		c := dial(t, url, client.WithTLSConfig(&tls.Config{RootCAs: roots}))
		var r string
		require.NoError(t, c.Call(ctx(t), "ping", nil, &r))
		require.Equal(t, "pong", r)
	})
	t.Run("https URL", func(t *testing.T) {
		dial(t, ts.URL+"/ws", client.WithTLSConfig(ts.Client().Transport.(*http.Transport).TLSClientConfig))
	})
	t.Run("untrusted", func(t *testing.T) {
		_, err := client.Dial(ctx(t), url)
		var unknown x509.UnknownAuthorityError
		require.ErrorAs(t, err, &unknown)
		require.ErrorContains(t, err, "client: cannot connect to "+url+": tls: failed to verify certificate")
	})
	t.Run("plain ws to a TLS server", func(t *testing.T) {
		_, err := client.Dial(ctx(t), "ws"+strings.TrimPrefix(ts.URL, "https")+"/ws")
		require.Error(t, err)
	})
}

// restartable is a wszero server on a fixed 127.0.0.1 port, which a test
// can stop and start again as a new process would.
type restartable struct {
	t    *testing.T
	addr string
	make func() *wszero.Server
	mu   sync.Mutex
	s    *wszero.Server
	ts   *httptest.Server
}

func newRestartable(t *testing.T, make func() *wszero.Server) *restartable {
	r := &restartable{t: t, make: make}
	r.start("127.0.0.1:0")
	r.addr = r.ts.Listener.Addr().String()
	t.Cleanup(r.stop)
	return r
}

func (r *restartable) start(addr string) {
	r.t.Helper()
	l, err := net.Listen("tcp", addr)
	require.NoError(r.t, err)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.s = r.make()
	r.ts = httptest.NewUnstartedServer(r.s)
	r.ts.Listener.Close()
	r.ts.Listener = l
	r.ts.Start()
}

func (r *restartable) restart() { r.start(r.addr) }

func (r *restartable) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ts != nil {
		shutdown(r.t, r.s, r.ts)
		r.s, r.ts = nil, nil
	}
}

func (r *restartable) url() string { return "ws://" + r.addr + "/ws" }

// life is what one run of a server received.
type life struct {
	mu    sync.Mutex
	notes []string
	drops int
}

func (l *life) dropped() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.drops
}

func TestReconnectAcrossServerRestart(t *testing.T) {
	var lives []*life
	var server *wszero.Server // the running one
	r := newRestartable(t, func() *wszero.Server {
		l := &life{}
		lives = append(lives, l)
		s := newServer()
		s.On("note", func(c *wszero.Client, p struct{ Text string }) {
			l.mu.Lock()
			l.notes = append(l.notes, p.Text)
			l.mu.Unlock()
		})
		s.On("notes", func(c *wszero.Client) []string {
			l.mu.Lock()
			defer l.mu.Unlock()
			return l.notes
		})
		s.On("drop", func(c *wszero.Client) string {
			l.mu.Lock()
			l.drops++
			l.mu.Unlock()
			c.Close() // the connection ends before the answer is sent
			return "never sent"
		})
		s.On("join", func(c *wszero.Client) error { return c.AddToGroup("news") })
		server = s
		return s
	})

	log := newLogRecorder()
	reconnected := make(chan struct{}, 4)
	news := make(chan string, 4)
	var c *client.Conn
	c = dial(t, r.url(),
		client.WithLogger(log.logger()),
		client.WithReconnect(client.Reconnect{MinDelay: 5 * time.Millisecond, MaxDelay: 20 * time.Millisecond}),
		client.WithOnReconnect(func() {
			// The server forgot the old connection's groups: join again.
			if err := c.Call(context.Background(), "join", nil, nil); err != nil {
				t.Errorf("joining again: %v", err)
			}
			reconnected <- struct{}{}
		}))
	c.On("news", func(p struct{ Text string }) { news <- p.Text })
	require.NoError(t, c.Call(ctx(t), "join", nil, nil))
	require.NoError(t, server.BroadcastTo("news", "news", wszero.Params{"text": "first run"}))
	require.Equal(t, "first run", receive(t, news))

	// A call in flight when the connection breaks fails, and is not sent
	// again on the new connection.
	require.ErrorIs(t, c.Call(ctx(t), "drop", nil, nil), client.ErrConnectionLost)
	receive(t, reconnected)
	require.NoError(t, c.Call(ctx(t), "notes", nil, nil)) // handled after anything sent before it
	require.Equal(t, 1, lives[0].dropped())

	// The server goes away. While it is down, messages wait in the queue,
	// and so does a call.
	r.stop()
	log.waitFor(t, "connection lost; reconnecting", 2)
	for _, text := range []string{"a", "b", "c"} {
		require.NoError(t, c.Send("note", wszero.Params{"text": text}))
	}
	notes := make(chan []string, 1)
	go func() {
		var got []string
		if err := c.Call(context.Background(), "notes", nil, &got); err != nil {
			t.Errorf("notes: %v", err)
		}
		notes <- got
	}()
	log.waitFor(t, "reconnecting failed", 1)

	// A new server on the same port: the queue is sent once, in order, then
	// the waiting call; the handlers registered before still work.
	r.restart()
	receive(t, reconnected)
	require.Equal(t, []string{"a", "b", "c"}, receive(t, notes))
	require.NoError(t, server.BroadcastTo("news", "news", wszero.Params{"text": "second run"}))
	require.Equal(t, "second run", receive(t, news))

	var again []string
	require.NoError(t, c.Call(ctx(t), "notes", nil, &again))
	require.Equal(t, []string{"a", "b", "c"}, again, "nothing was sent twice")
	require.Len(t, lives, 2)
	require.Equal(t, 0, lives[1].dropped(), "the call that failed was not sent again")
}

func TestReconnectGivesUp(t *testing.T) {
	r := newRestartable(t, func() *wszero.Server { return newServer() })
	log := newLogRecorder()
	c := dial(t, r.url(), client.WithLogger(log.logger()),
		client.WithReconnect(client.Reconnect{MinDelay: 100 * time.Millisecond, MaxDelay: 200 * time.Millisecond, Attempts: 3}))
	r.stop()
	log.waitFor(t, "connection lost; reconnecting", 1)
	// Queued (the first attempt is at least 50ms away), and never sent.
	err := c.Call(context.Background(), "anything", nil, nil)
	require.ErrorIs(t, err, client.ErrConnectionLost)
	require.ErrorContains(t, err, `client: the connection was lost before "anything" was answered: gave up reconnecting after 3 attempts`)

	waitDone(t, c)
	require.ErrorIs(t, c.Err(), client.ErrConnectionLost)
	require.EqualError(t, c.Err(), "client: gave up reconnecting after 3 attempts; the last: cannot connect to "+r.url()+
		": dial tcp "+r.addr+": connect: connection refused")
	require.Equal(t, 3, log.count("reconnecting failed"))
	require.Equal(t, client.ErrClosed, c.Send("anything", nil))
}

func TestReconnectQueueIsBounded(t *testing.T) {
	r := newRestartable(t, func() *wszero.Server { return newServer() })
	log := newLogRecorder()
	c := dial(t, r.url(), client.WithLogger(log.logger()),
		client.WithReconnect(client.Reconnect{MinDelay: time.Hour, Queue: 2}))
	r.stop()
	log.waitFor(t, "connection lost; reconnecting", 1)
	require.NoError(t, c.Send("a", nil))

	// A queued call whose context ends leaves the queue.
	short, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	require.ErrorIs(t, c.Call(short, "b", nil, nil), context.DeadlineExceeded)

	require.NoError(t, c.Send("c", nil))
	require.Equal(t, client.ErrQueueFull, c.Send("d", nil))
	require.Equal(t, client.ErrQueueFull, c.Call(ctx(t), "e", nil, nil))
}

func TestCloseWhileReconnecting(t *testing.T) {
	r := newRestartable(t, func() *wszero.Server { return newServer() })
	log := newLogRecorder()
	c, err := client.Dial(ctx(t), r.url(), client.WithLogger(log.logger()),
		client.WithReconnect(client.Reconnect{MinDelay: time.Hour}))
	require.NoError(t, err)
	r.stop()
	log.waitFor(t, "connection lost; reconnecting", 1)
	require.NoError(t, c.Send("queued", nil))
	require.NoError(t, c.Close())
	waitDone(t, c)
	require.Equal(t, client.ErrClosed, c.Err())
}

func TestReconnectOptionChecks(t *testing.T) {
	require.PanicsWithValue(t, "client.WithReconnect({MinDelay:-1ns MaxDelay:0s Attempts:0 Queue:0}): the delays, attempts and queue cannot be negative",
		func() { client.WithReconnect(client.Reconnect{MinDelay: -1}) })
	require.PanicsWithValue(t, "client.WithReconnect: MaxDelay 1s is shorter than MinDelay 2s",
		func() { client.WithReconnect(client.Reconnect{MinDelay: 2 * time.Second, MaxDelay: time.Second}) })
}
