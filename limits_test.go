package wszero

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
)

func TestMaxConnections(t *testing.T) {
	log := newLogSink()
	s := New(log.option(), WithMaxConnections(2), WithMaxConnectionsPerIP(0))
	s.On("ping", func(c *Client) string { return "pong" })
	disconnects := trackDisconnects(s)
	ts := startServer(t, s)
	first := dial(t, ts)
	second := dial(t, ts)

	_, status, body, resp := handshake(t, wsURL(ts, "/ws"), nil)
	require.Equal(t, http.StatusServiceUnavailable, status)
	require.Equal(t, "5", resp.Header.Get("Retry-After"))
	require.Equal(t, "This server is full: 2 clients are connected, the most it takes (wszero.WithMaxConnections). Try again later.", strings.TrimSpace(body))
	log.waitFor(t, "connection refused: the server is full", "limit=2", "status=503")
	require.Equal(t, "pong", second.call(1, map[string]any{"op": "ping"})["result"], "those inside are not affected")

	// A client that vanishes frees its place.
	require.NoError(t, first.conn.UnderlyingConn().Close())
	receive(t, disconnects, "the disconnect handler")
	third := dial(t, ts)
	require.Equal(t, "pong", third.call(1, map[string]any{"op": "ping"})["result"])

	t.Run("0 is no limit", func(t *testing.T) {
		_, ts := newTestServer(t, WithMaxConnections(0), WithMaxConnectionsPerIP(0))
		for i := 0; i < 20; i++ {
			dial(t, ts)
		}
	})
	t.Run("a negative limit panics", func(t *testing.T) {
		require.Panics(t, func() { WithMaxConnections(-1) })
	})
}

func TestMaxConnectionsPerIP(t *testing.T) {
	t.Run("one address", func(t *testing.T) {
		log := newLogSink()
		s := New(log.option(), WithMaxConnectionsPerIP(2))
		disconnects := trackDisconnects(s)
		ts := startServer(t, s)
		first := dial(t, ts)
		dial(t, ts)
		// X-Forwarded-For from a client that is not a trusted proxy is ignored.
		_, status, body, resp := handshake(t, wsURL(ts, "/ws"), http.Header{"X-Forwarded-For": {"203.0.113.9"}})
		require.Equal(t, http.StatusTooManyRequests, status)
		require.Equal(t, "5", resp.Header.Get("Retry-After"))
		require.Equal(t, "Too many connections from your address (127.0.0.1): 2 are open, the most one address may have "+
			"(wszero.WithMaxConnectionsPerIP). Close some pages, or try again later.", strings.TrimSpace(body))
		log.waitFor(t, "connection refused: too many from one address", "ip=127.0.0.1", "limit=2", "status=429", "WithTrustedProxies")

		require.NoError(t, first.conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")))
		receive(t, disconnects, "the disconnect handler")
		dial(t, ts) // its place is free again
	})
	t.Run("behind a trusted proxy each client counts", func(t *testing.T) {
		_, ts := newTestServer(t, WithMaxConnectionsPerIP(1), WithTrustedProxies("127.0.0.0/8"))
		for _, client := range []string{"198.51.100.1", "198.51.100.2", "2001:db8::1"} {
			_, status, _, _ := handshake(t, wsURL(ts, "/ws"), http.Header{"X-Forwarded-For": {client}})
			require.Equal(t, http.StatusSwitchingProtocols, status, client)
		}
		for _, client := range []string{"198.51.100.1", "2001:db8::2"} { // the same /64
			_, status, _, _ := handshake(t, wsURL(ts, "/ws"), http.Header{"X-Forwarded-For": {client}})
			require.Equal(t, http.StatusTooManyRequests, status, client)
		}
	})
	t.Run("a negative limit panics", func(t *testing.T) {
		require.Panics(t, func() { WithMaxConnectionsPerIP(-1) })
	})
}

func TestClientIP(t *testing.T) {
	tests := []struct {
		name    string
		trusted []string
		remote  string
		xff     []string
		want    string
	}{
		{"the peer's address", nil, "192.0.2.1:5000", nil, "192.0.2.1"},
		{"X-Forwarded-For is ignored by default", nil, "192.0.2.1:5000", []string{"198.51.100.7"}, "192.0.2.1"},
		{"from a trusted proxy", []string{"192.0.2.1"}, "192.0.2.1:5000", []string{"198.51.100.7"}, "198.51.100.7"},
		{"the rightmost untrusted hop", []string{"10.0.0.0/8"}, "10.0.0.1:5000", []string{"1.1.1.1, 198.51.100.7, 10.0.0.2"}, "198.51.100.7"},
		{"several headers join", []string{"10.0.0.0/8"}, "10.0.0.1:5000", []string{"1.1.1.1", "198.51.100.7"}, "198.51.100.7"},
		{"a forged left part is not believed", []string{"10.0.0.0/8"}, "10.0.0.1:5000", []string{"127.0.0.1, 198.51.100.7"}, "198.51.100.7"},
		{"every hop trusted: the leftmost", []string{"10.0.0.0/8"}, "10.0.0.1:5000", []string{"10.0.0.9, 10.0.0.2"}, "10.0.0.9"},
		{"garbage stops the walk at the hop that wrote it", []string{"10.0.0.0/8"}, "10.0.0.1:5000", []string{"1.1.1.1, nonsense, 10.0.0.2"}, "10.0.0.2"},
		{"no header from a trusted proxy", []string{"10.0.0.0/8"}, "10.0.0.1:5000", nil, "10.0.0.1"},
		{"an address with a port", []string{"10.0.0.0/8"}, "10.0.0.1:5000", []string{"198.51.100.7:4321"}, "198.51.100.7"},
		{"IPv6 counts by /64", nil, "[2001:db8:1:2:3:4:5:6]:5000", nil, "2001:db8:1:2::/64"},
		{"an IPv4-mapped address is IPv4", nil, "[::ffff:192.0.2.1]:5000", nil, "192.0.2.1"},
		{"a trusted IPv6 proxy", []string{"::1"}, "[::1]:5000", []string{"192.0.2.44"}, "192.0.2.44"},
		{"not an IP address", nil, "@unix", nil, "@unix"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(quiet(), WithTrustedProxies(tt.trusted...))
			r := &http.Request{RemoteAddr: tt.remote, Header: http.Header{"X-Forwarded-For": tt.xff}}
			require.Equal(t, tt.want, s.clientIP(r))
		})
	}
	t.Run("a bad proxy panics at once", func(t *testing.T) {
		require.Panics(t, func() { WithTrustedProxies("10.0.0.0/33") })
		require.Panics(t, func() { WithTrustedProxies("proxy.local") })
	})
}

func TestMaxGroupsPerClient(t *testing.T) {
	log := newLogSink()
	s := New(log.option(), WithMaxGroupsPerClient(3))
	s.On("join", func(c *Client, p struct{ Group string }) error { return c.AddToGroup(p.Group) })
	connects := trackConnects(s)
	ts := startServer(t, s)
	p, c := dialClient(t, ts, connects)
	for _, g := range []string{"a", "b", "c"} {
		require.NoError(t, c.AddToGroup(g))
	}
	require.NoError(t, c.AddToGroup("b"), "a group it is in already is fine")
	err := c.AddToGroup("d")
	require.ErrorIs(t, err, ErrTooManyGroups)
	require.Equal(t, `wszero: too many groups: the client cannot join "d": it is already in 3 groups, the most one client may be in `+
		`(wszero.WithMaxGroupsPerClient); take it out of one first`, err.Error())
	log.waitFor(t, "a client reached the group limit", "group=d", "limit=3")
	require.Equal(t, []string{"a", "b", "c"}, c.Groups())
	require.Empty(t, s.Members("d"))

	// A handler that returns the error tells the client.
	r := p.call(1, map[string]any{"op": "join", "group": "e"})
	require.Equal(t, "error", r["op"])
	require.Contains(t, r["msg"], "already in 3 groups")

	c.RemoveFromGroup("a")
	require.NoError(t, c.AddToGroup("d"))
	require.Equal(t, []string{"b", "c", "d"}, c.Groups())

	t.Run("0 is no limit", func(t *testing.T) {
		s, ts := newTestServer(t, WithMaxGroupsPerClient(0))
		connects := trackConnects(s)
		_, c := dialClient(t, ts, connects)
		for i := 0; i < DefaultMaxGroupsPerClient+10; i++ {
			require.NoError(t, c.AddToGroup(fmt.Sprint(i)))
		}
	})
	t.Run("the default", func(t *testing.T) {
		s, ts := newTestServer(t)
		connects := trackConnects(s)
		_, c := dialClient(t, ts, connects)
		for i := 0; i < DefaultMaxGroupsPerClient; i++ {
			require.NoError(t, c.AddToGroup(fmt.Sprint(i)))
		}
		require.ErrorIs(t, c.AddToGroup("one more"), ErrTooManyGroups)
	})
	t.Run("a negative limit panics", func(t *testing.T) {
		require.Panics(t, func() { WithMaxGroupsPerClient(-1) })
	})
}

func TestHandshakeTimeout(t *testing.T) {
	s := New(quiet(), WithHandshakeTimeout(300*time.Millisecond))
	s.On("ping", func(c *Client) string { return "pong" })
	addrs := make(chan net.Addr, 1)
	s.onServe = func(a net.Addr) { addrs <- a }
	served := make(chan error, 1)
	go func() { served <- s.ListenAndServe("127.0.0.1:0") }()
	addr := receive(t, addrs, "the server to listen")

	// A client that starts its request and never finishes it (slowloris).
	slow, err := net.Dial("tcp", addr.String())
	require.NoError(t, err)
	defer slow.Close()
	_, err = io.WriteString(slow, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n")
	require.NoError(t, err)
	require.NoError(t, slow.SetReadDeadline(time.Now().Add(testTimeout)))
	_, err = io.ReadAll(slow)
	var ne net.Error
	require.False(t, errors.As(err, &ne) && ne.Timeout(), "the server closed the connection; it did not wait for the test's deadline")

	// One that is quick enough is served.
	pingThenShutdown(t, s, addr.String(), served)

	t.Run("bad settings panic", func(t *testing.T) {
		require.Panics(t, func() { WithHandshakeTimeout(0) })
	})
}

func TestRefusalLogIsThrottled(t *testing.T) {
	log := newLogSink()
	_, ts := newTestServer(t, log.option(), WithMaxConnectionsPerIP(1))
	dial(t, ts)
	const tries = 50
	for i := 0; i < tries; i++ {
		_, status, _, _ := handshake(t, wsURL(ts, "/ws"), nil)
		require.Equal(t, http.StatusTooManyRequests, status)
	}
	lines := strings.Count(log.String(), "too many from one address")
	require.GreaterOrEqual(t, lines, 1)
	require.Less(t, lines, tries/2, "a flood of refusals does not flood the log")
}

func TestDefaultLimits(t *testing.T) {
	o := defaultOptions()
	require.Equal(t, DefaultMaxConnections, o.maxConns)
	require.Equal(t, DefaultMaxConnectionsPerIP, o.maxConnsPerIP)
	require.Equal(t, DefaultMaxGroupsPerClient, o.maxGroupsPerClient)
	require.Equal(t, DefaultHandshakeTimeout, o.handshakeTimeout)
	require.Empty(t, o.trustedProxies, "X-Forwarded-For is not believed by default")
	require.Nil(t, o.authenticate)
}

// TestREADMEListsEveryOption checks that the README's options table has a
// row for every option, with its default.
func TestREADMEListsEveryOption(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	rows := map[string]string{}
	for _, m := range regexp.MustCompile("(?m)^\\| (`With.*?) \\| (.*?) \\|").FindAllStringSubmatch(string(readme), -1) {
		for _, name := range regexp.MustCompile("`(With\\w+)\\(").FindAllStringSubmatch(m[1], -1) {
			rows[name[1]] = m[2]
		}
	}
	f, err := parser.ParseFile(token.NewFileSet(), "options.go", nil, 0)
	require.NoError(t, err)
	n := 0
	for _, d := range f.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || fn.Recv != nil || !ast.IsExported(fn.Name.Name) || !strings.HasPrefix(fn.Name.Name, "With") {
			continue
		}
		n++
		def, ok := rows[fn.Name.Name]
		require.True(t, ok, "the README's options table has no row for %s", fn.Name.Name)
		require.NotEmpty(t, strings.TrimSpace(def), "the README gives no default for %s", fn.Name.Name)
	}
	require.Greater(t, n, 15)
}

func TestWriteTimeoutIsLogged(t *testing.T) {
	log := newLogSink()
	s := New(log.option(), WithWriteTimeout(200*time.Millisecond), WithSendQueue(1<<20, 1<<30))
	connects := trackConnects(s)
	disconnects := trackDisconnects(s)
	ts := startSmallBufferServer(t, s)
	dial(t, ts) // reads nothing
	c := receive(t, connects, "connect")
	big := strings.Repeat("x", 8<<10)
	for i := 0; i < 500; i++ {
		if c.Send("big", Params{"i": i, "pad": big}) != nil {
			break
		}
	}
	require.Equal(t, c, receive(t, disconnects, "the disconnect handler"))
	log.waitFor(t, "a write to it took longer than the write timeout", "client="+c.ID(), "timeout=200ms")
}

func TestRateLimitDropsAreLogged(t *testing.T) {
	log := newLogSink()
	s, ts := newTestServer(t, log.option(), WithRateLimit(1, 1))
	s.On("echo", func(c *Client, p Params) Params { return p })
	p := dial(t, ts)
	p.send(`{"op":"echo"}`)
	p.send(`{"op":"echo"}`) // over the limit: dropped
	require.Contains(t, p.expect("error")["msg"], "slow down")
	log.waitFor(t, "messages dropped: a client sends faster than the rate limit", "limit=1")
}

// TestAMessageTooBigForAnyQueue: a message larger than a client's send
// queue is refused where it is sent, with an error naming the limit, and
// disconnects nobody; a result that large answers its call with an error.
func TestAMessageTooBigForAnyQueue(t *testing.T) {
	s, ts := newTestServer(t, WithSendQueue(1024, 4096))
	connects := trackConnects(s)
	disconnects := trackDisconnects(s)
	big := strings.Repeat("x", 5000)
	s.On("big", func(c *Client) string { return big })
	a, ca := dialClient(t, ts, connects)
	b, _ := dialClient(t, ts, connects)
	require.NoError(t, ca.AddToGroup("g"))

	for name, err := range map[string]error{
		"Broadcast":   s.Broadcast("huge", Params{"text": big}),
		"BroadcastTo": s.BroadcastTo("g", "huge", Params{"text": big}),
		"Send":        ca.Send("huge", Params{"text": big}),
		"SendTo":      s.SendTo(ca.ID(), "huge", Params{"text": big}),
	} {
		require.ErrorIs(t, err, ErrTooBig, name)
		require.ErrorContains(t, err, "and a client's send queue holds 4096 (wszero.WithSendQueue)", name)
	}
	// A frame from elsewhere (another node, say) that no queue holds is
	// dropped for that client, which stays.
	brokerNode{s}.Deliver(Target{}, []byte(`{"op":"huge","text":"`+big+`"}`))

	answer := a.call(1, map[string]any{"op": "big"})
	require.Equal(t, "error", answer["op"])
	require.Contains(t, answer["msg"], "big returned a result of 5036 bytes, more than can be sent (4096 bytes, wszero.WithSendQueue)")

	require.NoError(t, s.Broadcast("small", nil))
	require.Equal(t, "small", a.expect("small")["op"])
	require.Equal(t, "small", b.expect("small")["op"])
	select {
	case c := <-disconnects:
		t.Fatalf("%s was disconnected", c)
	default:
	}
}

func TestGroupNamesAreBounded(t *testing.T) {
	s, ts := newTestServer(t)
	connects := trackConnects(s)
	_, c := dialClient(t, ts, connects)
	require.NoError(t, c.AddToGroup(strings.Repeat("g", maxGroupName)))
	long := strings.Repeat("g", maxGroupName+1)
	require.ErrorContains(t, c.AddToGroup(long), "a group name is at most 256 bytes; this one is 257")
	require.ErrorContains(t, s.BroadcastTo(long, "x", nil), "at most 256 bytes")
	require.Equal(t, []string{strings.Repeat("g", maxGroupName)}, c.Groups())
}

// TestHTTPRequestsAreBounded: the servers wszero starts bound a request's
// body by time and its header by size, so that neither a body that never
// comes nor huge headers can hold connections or memory.
func TestHTTPRequestsAreBounded(t *testing.T) {
	s := New(quiet(), WithHandshakeTimeout(200*time.Millisecond))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()
	t.Cleanup(func() {
		require.NoError(t, s.Shutdown(context.Background()))
		<-served
	})

	t.Run("a body that never comes", func(t *testing.T) {
		conn, err := net.Dial("tcp", l.Addr().String())
		require.NoError(t, err)
		defer conn.Close()
		_, err = io.WriteString(conn, "POST /anything HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
		require.NoError(t, err)
		require.NoError(t, conn.SetReadDeadline(time.Now().Add(testTimeout)))
		_, err = io.ReadAll(conn) // until the server closes it
		var ne net.Error
		require.False(t, errors.As(err, &ne) && ne.Timeout(), "the server held the connection until the test's deadline")
	})

	t.Run("a header too large", func(t *testing.T) {
		conn, err := net.Dial("tcp", l.Addr().String())
		require.NoError(t, err)
		defer conn.Close()
		_, err = io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("a", 128<<10)+"\r\n\r\n")
		if err == nil {
			require.NoError(t, conn.SetReadDeadline(time.Now().Add(testTimeout)))
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, http.StatusRequestHeaderFieldsTooLarge, resp.StatusCode)
		} // or the server closed the connection while the header was still coming
	})
}
