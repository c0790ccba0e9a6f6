package natsbroker_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/wszero/wszero"
	"github.com/wszero/wszero/client"
	"github.com/wszero/wszero/internal/cutproxy"
)

// sessionApp gives a node the handlers of the resume test: joining a
// team with a name, and notes it counts in order.
type sessionApp struct {
	mu    sync.Mutex
	notes []int
	away  chan string
	gone  chan string
}

func addSessionApp(n *node) *sessionApp {
	a := &sessionApp{away: make(chan string, 8), gone: make(chan string, 8)}
	n.s.On("join", func(c *wszero.Client, p struct{ Name, Team string }) error {
		c.Set("name", p.Name)
		return c.AddToGroup(p.Team)
	})
	n.s.On("whoami", func(c *wszero.Client) string { return c.Get("name").(string) })
	n.s.On("note", func(c *wszero.Client, p struct{ N int }) {
		a.mu.Lock()
		a.notes = append(a.notes, p.N)
		a.mu.Unlock()
	})
	n.s.On("client_away", func(c *wszero.Client) { a.away <- c.ID() })
	n.s.On("disconnect", func(c *wszero.Client) { a.gone <- c.ID() })
	return a
}

// ticks collects the n of the "tick" messages a client receives.
type ticks struct {
	mu   sync.Mutex
	got  []int
	more chan struct{}
}

func (k *ticks) handle(p struct{ N int }) {
	k.mu.Lock()
	k.got = append(k.got, p.N)
	k.mu.Unlock()
	select {
	case k.more <- struct{}{}:
	default:
	}
}

// upTo waits until tick n has arrived, and returns what arrived.
func (k *ticks) upTo(t *testing.T, n int) []int {
	t.Helper()
	deadline := time.After(testTimeout)
	for {
		k.mu.Lock()
		got := append([]int(nil), k.got...)
		k.mu.Unlock()
		if len(got) > 0 && got[len(got)-1] >= n {
			return got
		}
		select {
		case <-k.more:
		case <-deadline:
			t.Fatalf("tick %d did not arrive: %v", n, got)
		}
	}
}

func requireOneToN(t *testing.T, what string, got []int, n int) {
	t.Helper()
	for i, v := range got {
		if v != i+1 {
			t.Fatalf("%s: message %d was %d (lost, doubled or out of order): %v", what, i+1, v, got)
		}
	}
	require.Len(t, got, n, what)
}

func receiveWithin[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(testTimeout):
		t.Fatalf("%s did not happen within %v", what, testTimeout)
		panic("unreachable")
	}
}

// dialSession connects a client that reconnects quickly, through proxy,
// and returns it, the n of the "tick" and "direct" messages it receives,
// and its sessions as they come.
func dialSession(t *testing.T, proxy *cutproxy.Proxy) (*client.Conn, *ticks, chan client.Session) {
	t.Helper()
	k := &ticks{more: make(chan struct{}, 1)}
	sessions := make(chan client.Session, 16)
	c, err := client.Dial(t.Context(), "ws://"+proxy.Addr()+"/ws", client.WithLogger(nil),
		client.WithReconnect(client.Reconnect{MinDelay: 20 * time.Millisecond, MaxDelay: 100 * time.Millisecond}),
		client.WithOnSession(func(s client.Session) { sessions <- s }),
		client.WithHandler("tick", k.handle), client.WithHandler("direct", k.handle))
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c, k, sessions
}

// TestResumeOnAnotherNode: a client's connection drops, and it comes back
// through a load balancer to the other node. It resumes there: the node
// that holds its session serves it through a tunnel, with every guarantee
// (same ID, group and state; what the other node broadcast to its group
// and sent it by ID meanwhile, once and in order; its own notes handled
// once). When that node has stopped, the client is told it was not
// resumed, and starts anew where it is.
func TestResumeOnAnotherNode(t *testing.T) {
	_, nodes := cluster(t, 2)
	a, b := nodes[0], nodes[1]
	appA := addSessionApp(a)
	addSessionApp(b)
	proxy := cutproxy.Start(t, strings.TrimPrefix(a.ts.URL, "http://"))
	c, k, sessions := dialSession(t, proxy)
	ctx := t.Context()
	first := receiveWithin(t, sessions, "the first session")
	id := first.ID
	require.Equal(t, a.s.Clients()[0].ID(), id)
	require.NoError(t, c.Call(ctx, "join", wszero.Params{"name": "Ada", "team": "red"}, nil))
	// Broadcasts come from node B, across NATS; the first tells that A
	// hosts the group (B publishes to it once A has subscribed).
	tick, sent := 0, 0
	send := func() {
		tick++
		require.NoError(t, b.s.BroadcastTo("red", "tick", wszero.Params{"n": tick}))
	}
	note := func() {
		sent++
		require.NoError(t, c.Send("note", wszero.Params{"n": sent}))
	}
	eventually(t, "A subscribed to red", func() bool {
		n, _ := b.s.CountMembers(ctx, "red")
		return n == 1
	})
	for range 5 {
		send()
		note()
	}
	k.upTo(t, 5)
	proxy.SetBackend(strings.TrimPrefix(b.ts.URL, "http://")) // the balancer picks B next time
	proxy.Down()
	require.Equal(t, id, receiveWithin(t, appA.away, "client_away on A"))
	for range 20 {
		send()
		note()
	}
	proxy.Up()
	resumed := receiveWithin(t, sessions, "the resume")
	require.True(t, resumed.Resumed, "%+v", resumed)
	require.Equal(t, id, resumed.ID)
	require.Greater(t, resumed.Missed, 0)
	for range 5 {
		send()
		note()
	}
	requireOneToN(t, "ticks", k.upTo(t, tick), tick)
	var name string
	require.NoError(t, c.Call(ctx, "whoami", nil, &name))
	require.Equal(t, "Ada", name)
	appA.mu.Lock()
	notes := append([]int(nil), appA.notes...)
	appA.mu.Unlock()
	requireOneToN(t, "notes handled on A", notes, sent)
	require.Len(t, a.s.Clients(), 1)
	require.False(t, a.s.Clients()[0].Away())
	require.Equal(t, []string{"red"}, a.s.Clients()[0].Groups())
	require.Empty(t, b.s.Clients(), "B relays; the client is A's")

	// A stops: the tunnel ends, and the client, back on B, cannot resume.
	a.shutdown(t)
	again := receiveWithin(t, sessions, "the reconnection after A stopped")
	require.False(t, again.Resumed)
	require.Contains(t, again.Why, "gone")
	require.NotEqual(t, id, again.ID)
	require.Len(t, b.s.Clients(), 1)
}

// TestResumedClientAcrossANATSRestart: a client has resumed its session of
// node A through node B, and NATS restarts. The tunnel between them stays
// whole, or breaks (NATS lost some of its messages) and the client, back
// on B, resumes through a new one once NATS is back: either way it keeps
// its session and has every message once, in order.
func TestResumedClientAcrossANATSRestart(t *testing.T) {
	ns, nodes := cluster(t, 2)
	a, b := nodes[0], nodes[1]
	addSessionApp(a)
	addSessionApp(b)
	proxy := cutproxy.Start(t, strings.TrimPrefix(a.ts.URL, "http://"))
	c, k, sessions := dialSession(t, proxy)
	ctx := t.Context()
	id := receiveWithin(t, sessions, "the first session").ID
	require.NoError(t, c.Call(ctx, "join", wszero.Params{"name": "Ada", "team": "red"}, nil))
	proxy.SetBackend(strings.TrimPrefix(b.ts.URL, "http://"))
	proxy.Cut()
	resumed := receiveWithin(t, sessions, "the resume through B")
	require.True(t, resumed.Resumed, "%+v", resumed)
	require.Equal(t, id, resumed.ID)

	// A's broadcasts reach the client through the tunnel.
	tick := 0
	send := func(n int) {
		for range n {
			tick++
			require.NoError(t, a.s.BroadcastTo("red", "tick", wszero.Params{"n": tick}))
		}
	}
	send(5)
	k.upTo(t, tick)

	natsURL := ns.ClientURL()
	stopNATS(ns)
	for _, n := range nodes {
		eventually(t, "the brokers to see NATS gone", func() bool { return !n.b.Conn().IsConnected() })
	}
	send(10) // into the tunnel while NATS is away
	startNATS(t, portOf(t, natsURL))
	// Each node's subscriptions are back once its probe reaches a
	// client of the other.
	probes := []*peer{dial(t, a), dial(t, b)}
	for i, n := range nodes {
		other := probes[1-i]
		eventually(t, fmt.Sprintf("a probe from node %d to reach the other", i), func() bool {
			require.NoError(t, n.s.Broadcast("probe", nil))
			return len(other.messages("probe")) > 0
		})
	}
	send(10) // these show the tunnel a hole, if NATS made one
	requireOneToN(t, "ticks", k.upTo(t, tick), tick)
	for len(sessions) > 0 {
		s := <-sessions
		require.True(t, s.Resumed, "the client came back and did not resume: %+v", s)
		require.Equal(t, id, s.ID)
		t.Logf("the tunnel broke, and the client resumed through a new one (%d missed)", s.Missed)
	}
	require.NotNil(t, a.s.Client(id), "A holds the session")
	require.Nil(t, b.s.Client(id), "B relays it")
}
