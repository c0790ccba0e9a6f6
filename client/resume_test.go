package client_test

import (
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"

	"github.com/wszero/wszero"
	"github.com/wszero/wszero/client"
	"github.com/wszero/wszero/internal/cutproxy"
	"github.com/wszero/wszero/internal/protocol"
)

// app is the server side of the resume tests: a client joins a team, and
// the server counts the notes it sends, in order.
type app struct {
	s        *wszero.Server
	mu       sync.Mutex
	notes    []int       // the n of every note handled, in order
	connects chan string // IDs whose connect ran
	gone     chan string // IDs whose disconnect ran
	away     chan string // IDs whose client_away ran
	back     chan string // IDs whose client_back ran
}

func newApp(opts ...wszero.Option) *app {
	a := &app{s: newServer(opts...), gone: make(chan string, 16), away: make(chan string, 16), back: make(chan string, 16)}
	a.s.On("client_away", func(c *wszero.Client) { a.away <- c.ID() })
	a.s.On("client_back", func(c *wszero.Client) { a.back <- c.ID() })
	a.connects = make(chan string, 16)
	a.s.On("connect", func(c *wszero.Client) { a.connects <- c.ID() })
	a.s.On("disconnect", func(c *wszero.Client) { a.gone <- c.ID() })
	a.s.On("join", func(c *wszero.Client, p struct{ Name, Team string }) (string, error) {
		c.Set("name", p.Name)
		return c.ID(), c.AddToGroup(p.Team)
	})
	a.s.On("note", func(c *wszero.Client, p struct{ N int }) {
		a.mu.Lock()
		a.notes = append(a.notes, p.N)
		a.mu.Unlock()
	})
	a.s.On("whoami", func(c *wszero.Client) string { return c.Get("name").(string) })
	return a
}

func (a *app) notesHandled() []int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]int(nil), a.notes...)
}

// receiver collects the n of a stream of messages, to check that each
// arrived once and in order.
type receiver struct {
	mu   sync.Mutex
	got  []int
	more chan struct{}
}

func newReceiver() *receiver { return &receiver{more: make(chan struct{}, 1)} }

func (r *receiver) handle(p struct{ N int }) {
	r.mu.Lock()
	r.got = append(r.got, p.N)
	r.mu.Unlock()
	select {
	case r.more <- struct{}{}:
	default:
	}
}

// waitFor waits until n has arrived.
func (r *receiver) waitFor(t *testing.T, n int) []int {
	t.Helper()
	deadline := time.After(testTimeout)
	for {
		r.mu.Lock()
		got := append([]int(nil), r.got...)
		r.mu.Unlock()
		if len(got) > 0 && got[len(got)-1] >= n {
			return got
		}
		select {
		case <-r.more:
		case <-deadline:
			t.Fatalf("message %d did not arrive; got %v", n, got)
		}
	}
}

// requireOnceInOrder checks that got is 1, 2, …, n.
func requireOnceInOrder(t *testing.T, what string, got []int, n int) {
	t.Helper()
	for i, v := range got {
		if v != i+1 {
			t.Fatalf("%s: message %d was %d (lost, doubled or out of order): %v", what, i+1, v, got)
		}
	}
	require.Len(t, got, n, what)
}

// proxied serves a behind a cutproxy, and returns the proxy.
func proxied(t *testing.T, a *app) (*cutproxy.Proxy, *httptest.Server) {
	ts := serve(t, a.s, nil)
	return cutproxy.Start(t, strings.TrimPrefix(ts.URL, "http://")), ts
}

// sessions records what WithOnSession says.
type sessions struct {
	ch chan client.Session
}

func (s *sessions) option() client.Option {
	s.ch = make(chan client.Session, 8)
	return client.WithOnSession(func(x client.Session) { s.ch <- x })
}

var fastReconnect = client.WithReconnect(client.Reconnect{MinDelay: 20 * time.Millisecond, MaxDelay: 100 * time.Millisecond})

// TestResumeAfterABlip: the network between a Go client and its server is
// down for a while; meanwhile the server broadcasts to the client's group
// and sends to it by ID, and the client sends notes and a call. After the
// resume it is the same client, in the same group with the same state;
// every message either way arrived once and in order; the call is
// answered; and WithOnSession said it resumed, with what it missed.
func TestResumeAfterABlip(t *testing.T) {
	a := newApp()
	gate := make(chan struct{})
	a.s.On("slow", func(c *wszero.Client) string { <-gate; return "done" })
	proxy, _ := proxied(t, a)
	ticks, direct := newReceiver(), newReceiver()
	var ss sessions
	c := dial(t, "ws://"+proxy.Addr()+"/ws", fastReconnect, ss.option(),
		client.WithHandler("tick", ticks.handle), client.WithHandler("direct", direct.handle))
	first := receive(t, ss.ch)
	require.False(t, first.Resumed)
	var id string
	require.NoError(t, c.Call(ctx(t), "join", wszero.Params{"name": "Ada", "team": "red"}, &id))
	require.Equal(t, first.ID, id)
	require.Equal(t, id, c.ID())

	tick, sent := 0, 0
	send := func() {
		tick++
		require.NoError(t, a.s.BroadcastTo("red", "tick", wszero.Params{"n": tick}))
		require.NoError(t, a.s.SendTo(id, "direct", wszero.Params{"n": tick}))
	}
	note := func() {
		sent++
		require.NoError(t, c.Send("note", wszero.Params{"n": sent}), "a Send in a session never fails for a drop")
	}
	for range 5 {
		send()
		note()
	}
	ticks.waitFor(t, 5)
	answered := make(chan error, 1)
	go func() {
		var r string
		answered <- c.Call(ctx(t), "slow", nil, &r)
	}()
	proxy.Down()
	close(gate)    // the call's answer is sent once the connection is down
	for range 20 { // while it is down: some written to a dead socket, some queued
		send()
		note()
	}
	require.Equal(t, id, receive(t, a.away), "client_away runs")
	require.True(t, clientAway(a.s))
	for range 20 {
		send()
		note()
	}
	proxy.Up()
	resumed := receive(t, ss.ch)
	require.True(t, resumed.Resumed, "resumed: %+v", resumed)
	require.Greater(t, resumed.Missed, 0)
	require.Equal(t, id, resumed.ID)
	for range 5 {
		send()
		note()
	}
	requireOnceInOrder(t, "broadcasts to the group", ticks.waitFor(t, tick), tick)
	requireOnceInOrder(t, "sends by ID", direct.waitFor(t, tick), tick)
	require.NoError(t, receive(t, answered), "the call in flight is answered after the resume")

	var name string
	require.NoError(t, c.Call(ctx(t), "whoami", nil, &name))
	require.Equal(t, "Ada", name, "Set/Get state survives")
	requireOnceInOrder(t, "the client's notes", a.notesHandled(), sent)
	require.Equal(t, id, receive(t, a.back), "client_back runs")
	clients := a.s.Clients()
	require.Len(t, clients, 1)
	require.Equal(t, id, clients[0].ID())
	require.Equal(t, []string{"red"}, clients[0].Groups())
	require.False(t, clients[0].Away())
	require.Equal(t, id, receive(t, a.connects))
	select {
	case again := <-a.connects:
		t.Fatalf("connect ran again, for %s", again)
	case gone := <-a.gone:
		t.Fatalf("disconnect ran for %s during a blip", gone)
	default:
	}
}

// clientAway reports whether s's only client is away.
func clientAway(s *wszero.Server) bool {
	cs := s.Clients()
	return len(cs) == 1 && cs[0].Away()
}

// TestResumeTakesOverAStaleConnection: the client's side of the connection
// dies while the server's stays open and silent (the server has not
// noticed). The client's resume takes the session over at once, closing
// the old connection: one client, one connection, nothing doubled.
func TestResumeTakesOverAStaleConnection(t *testing.T) {
	a := newApp()
	proxy, _ := proxied(t, a)
	ticks := newReceiver()
	var ss sessions
	c := dial(t, "ws://"+proxy.Addr()+"/ws", fastReconnect, ss.option(), client.WithHandler("tick", ticks.handle))
	receive(t, ss.ch)
	var id string
	require.NoError(t, c.Call(ctx(t), "join", wszero.Params{"name": "Ada", "team": "red"}, &id))
	require.NoError(t, a.s.BroadcastTo("red", "tick", wszero.Params{"n": 1}))
	ticks.waitFor(t, 1)
	proxy.Stall()
	require.NoError(t, a.s.BroadcastTo("red", "tick", wszero.Params{"n": 2}))
	resumed := receive(t, ss.ch)
	require.True(t, resumed.Resumed, "resumed: %+v", resumed)
	require.Equal(t, id, resumed.ID)
	require.NoError(t, a.s.BroadcastTo("red", "tick", wszero.Params{"n": 3}))
	requireOnceInOrder(t, "ticks", ticks.waitFor(t, 3), 3)
	require.Len(t, a.s.Clients(), 1)
	require.False(t, a.s.Clients()[0].Away())
	require.Equal(t, 2, proxy.Accepted())
}

// TestResumeWindowPassed: a client that comes back after the window is a
// new client, and is told why; the call it had sent fails, since the
// server may have run it.
func TestResumeWindowPassed(t *testing.T) {
	a := newApp(wszero.WithResumeWindow(100 * time.Millisecond))
	var proxy *cutproxy.Proxy
	// The network fails while the server handles the call: its answer
	// waits for a client that does not come back in time.
	a.s.On("hold", func(c *wszero.Client) { proxy.Down() })
	proxy, _ = proxied(t, a)
	var ss sessions
	c := dial(t, "ws://"+proxy.Addr()+"/ws", fastReconnect, ss.option())
	first := receive(t, ss.ch)
	var id string
	require.NoError(t, c.Call(ctx(t), "join", wszero.Params{"name": "Ada", "team": "red"}, &id))
	failed := make(chan error, 1)
	go func() { failed <- c.Call(ctx(t), "hold", nil, nil) }()
	require.Equal(t, id, receive(t, a.gone), "disconnect runs when the window passes")
	proxy.Up()
	again := receive(t, ss.ch)
	require.False(t, again.Resumed)
	require.NotEqual(t, first.ID, again.ID)
	require.Contains(t, again.Why, "ended")
	err := receive(t, failed)
	require.ErrorIs(t, err, client.ErrConnectionLost)
	require.ErrorContains(t, err, "could not resume")
	require.Equal(t, again.ID, c.ID())
	require.Equal(t, first.ID, receive(t, a.connects))
	require.Equal(t, again.ID, receive(t, a.connects), "connect runs for the new client")
}

// TestResumeAfterServerRestart: the server the client comes back to is
// another (a restart): a new session, said so.
func TestResumeAfterServerRestart(t *testing.T) {
	a := newApp()
	proxy, _ := proxied(t, a)
	var ss sessions
	dial(t, "ws://"+proxy.Addr()+"/ws", fastReconnect, ss.option())
	first := receive(t, ss.ch)
	b := newApp()
	tsB := serve(t, b.s, nil)
	proxy.SetBackend(strings.TrimPrefix(tsB.URL, "http://"))
	proxy.Cut()
	again := receive(t, ss.ch)
	require.False(t, again.Resumed)
	require.NotEqual(t, first.ID, again.ID)
	require.Len(t, b.s.Clients(), 1)
}

// TestTimedAckAfterAReconnect: messages that arrived just before a drop,
// too few to be acknowledged at once, are acknowledged after the resume
// by the timer, even when the timer came due while the Conn was
// disconnected (it used to stop timed acks for good).
func TestTimedAckAfterAReconnect(t *testing.T) {
	acks := make(chan string, 4)
	var conns atomic.Int32
	ts := rawServerWith(t, websocket.Upgrader{Subprotocols: []string{protocol.SubprotocolJSON}}, func(conn *websocket.Conn) {
		if conns.Add(1) == 1 {
			_ = conn.WriteMessage(websocket.TextMessage, protocol.AppendSession(nil, protocol.Session{ID: "c1", Key: "k1"}))
			_ = conn.WriteMessage(websocket.TextMessage, []byte(`{"op":"tick"}`))
			_ = conn.WriteMessage(websocket.TextMessage, []byte(`{"op":"tick"}`))
			conn.UnderlyingConn().Close() // the network fails
			return
		}
		if _, data, err := conn.ReadMessage(); err != nil || !strings.Contains(string(data), protocol.OpResume) {
			return
		}
		_ = conn.WriteMessage(websocket.TextMessage, protocol.AppendSession(nil, protocol.Session{ID: "c1", Key: "k2", Resumed: true}))
		for {
			_, data, err := conn.ReadMessage()
			if err != nil {
				return
			}
			if strings.Contains(string(data), protocol.OpAck) {
				acks <- string(data)
			}
		}
	})
	// The reconnection waits 1.5 to 3 s: the ack timer (1 s) comes due
	// while disconnected.
	dial(t, wsURL(ts), client.WithReconnect(client.Reconnect{MinDelay: 3 * time.Second, MaxDelay: 3 * time.Second}),
		client.WithHandler("tick", func() {}))
	select {
	case ack := <-acks:
		require.JSONEq(t, `{"op":"_ack","seen":2}`, ack)
	case <-time.After(3*time.Second + 2*time.Second + testTimeout):
		t.Fatal("what arrived before the drop was never acknowledged")
	}
}
