package wszero

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fakeBroker links the servers of one test process, the way a real broker
// links processes, and records what it is told. Each node receives on a
// goroutine of its own, in order, as from a real broker.
type fakeBroker struct {
	hub  *fakeHub
	node Node

	mu      sync.Mutex
	changed []string
	closed  bool
	inbox   []func() // what other nodes sent, in order
	wake    chan struct{}
	done    chan struct{}
}

type fakeHub struct {
	mu    sync.Mutex
	nodes []*fakeBroker
}

func (h *fakeHub) broker() *fakeBroker {
	b := &fakeBroker{hub: h, wake: make(chan struct{}, 1), done: make(chan struct{})}
	h.mu.Lock()
	h.nodes = append(h.nodes, b)
	h.mu.Unlock()
	return b
}

func (b *fakeBroker) Start(n Node) error {
	b.node = n
	go b.receive()
	return nil
}

// receive runs what other nodes sent, in order, until Close.
func (b *fakeBroker) receive() {
	for {
		select {
		case <-b.wake:
		case <-b.done:
			return
		}
		b.mu.Lock()
		fns := b.inbox
		b.inbox = nil
		b.mu.Unlock()
		for _, fn := range fns {
			fn()
		}
	}
}

// others runs send for every other node (only to, when given) on that
// node's receiving goroutine.
func (b *fakeBroker) others(to string, send func(o *fakeBroker)) {
	b.hub.mu.Lock()
	nodes := append([]*fakeBroker(nil), b.hub.nodes...)
	b.hub.mu.Unlock()
	for _, o := range nodes {
		if o == b || o.node == nil || (to != "" && o.node.ID() != to) {
			continue
		}
		o.mu.Lock()
		if !o.closed {
			o.inbox = append(o.inbox, func() { send(o) })
		}
		o.mu.Unlock()
		select {
		case o.wake <- struct{}{}:
		default:
		}
	}
}

func (b *fakeBroker) Publish(to Target, frame []byte) error {
	frame = append([]byte(nil), frame...)
	node := ""
	if to.Client != "" {
		node = NodeOf(to.Client)
	}
	b.others(node, func(o *fakeBroker) {
		if to.Client != "" || to.Group == "" || o.node.Members(to.Group) > 0 {
			o.node.Deliver(to, frame)
		}
	})
	return nil
}

func (b *fakeBroker) Signal(node string, msg []byte) error {
	msg = append([]byte(nil), msg...)
	from := b.node.ID()
	b.others(node, func(o *fakeBroker) { o.node.Signal(from, msg) })
	return nil
}

func (b *fakeBroker) GroupChanged(group string) {
	b.mu.Lock()
	b.changed = append(b.changed, group)
	b.mu.Unlock()
}

func (b *fakeBroker) Close(context.Context) error {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		close(b.done)
	}
	b.mu.Unlock()
	return nil
}

func (b *fakeBroker) changes() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.changed...)
}

func TestBrokerCarriesBroadcastsGroupsAndSendsBetweenServers(t *testing.T) {
	hub := &fakeHub{}
	b1, b2 := hub.broker(), hub.broker()
	s1, ts1 := newTestServer(t, WithBroker(b1))
	s2, ts2 := newTestServer(t, WithBroker(b2))
	p1, p2 := dial(t, ts1), dial(t, ts2)
	c1, c2 := waitClient(t, s1), waitClient(t, s2)
	require.Equal(t, s1.node, NodeOf(c1.ID()), "a clustered client's ID names its node")
	require.NotEqual(t, NodeOf(c1.ID()), NodeOf(c2.ID()))

	require.NoError(t, s1.Broadcast("news", Params{"n": 1}))
	require.Equal(t, map[string]any{"op": "news", "n": 1.0}, p1.read())
	require.Equal(t, map[string]any{"op": "news", "n": 1.0}, p2.read(), "delivered on the other server once, not echoed back")

	require.NoError(t, c2.AddToGroup("red"))
	require.NoError(t, c2.AddToGroup("red"))
	require.Equal(t, []string{"red"}, b2.changes(), "the first member here, once")
	require.NoError(t, s1.BroadcastTo("red", "team", nil))
	require.Equal(t, map[string]any{"op": "team"}, p2.read())
	// The join's presence signal goes s2 → s1, with no order against
	// the broadcast that went the other way: wait for it.
	eventuallyTrue(t, func() bool {
		n, err := s1.CountMembers(context.Background(), "red")
		return err == nil && n == 1
	})
	require.Empty(t, s1.Members("red"))

	require.NoError(t, s1.SendTo(c2.ID(), "direct", Params{"x": "y"}))
	require.Equal(t, map[string]any{"op": "direct", "x": "y"}, p2.read())
	require.NoError(t, s2.SendTo(c2.ID(), "local", nil))
	require.Equal(t, map[string]any{"op": "local"}, p2.read())
	require.ErrorIs(t, s1.SendTo(s1.node+".gone", "x", nil), ErrClosed)
	require.ErrorIs(t, s1.SendTo("no such client", "x", nil), ErrClosed)

	c2.RemoveFromGroup("red")
	c2.RemoveFromGroup("red")
	require.Equal(t, []string{"red", "red"}, b2.changes(), "the last member here left, once")
	require.NoError(t, c1.AddToGroup("blue"))
	p1.conn.Close() // a disconnect leaves the group too
	eventuallyTrue(t, func() bool { return len(b1.changes()) == 2 })

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	require.NoError(t, s1.Shutdown(ctx))
	b1.mu.Lock()
	require.True(t, b1.closed, "Shutdown closes the broker")
	b1.mu.Unlock()
}

func TestWithoutBrokerNothingChanges(t *testing.T) {
	s, ts := newTestServer(t)
	dial(t, ts)
	c := waitClient(t, s)
	require.NotContains(t, c.ID(), ".", "a lone server's IDs are as before")
	require.Equal(t, "", NodeOf(c.ID()))
	require.ErrorIs(t, s.SendTo("elsewhere.abc", "x", nil), ErrClosed)
	require.NoError(t, c.AddToGroup("g"))
	n, err := s.CountMembers(context.Background(), "g")
	require.NoError(t, err)
	require.Equal(t, 1, n)
}

// TestRootModuleCompilesNoNATS keeps NATS out of the root module: only the
// nested module natsbroker requires it.
func TestRootModuleCompilesNoNATS(t *testing.T) {
	for _, f := range []string{"go.mod", "go.sum"} {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		require.NotContains(t, string(data), "nats-io", f)
	}
}

// waitClient waits for s's only client.
func waitClient(t *testing.T, s *Server) *Client {
	t.Helper()
	var c *Client
	eventuallyTrue(t, func() bool {
		cs := s.Clients()
		if len(cs) == 1 {
			c = cs[0]
		}
		return c != nil
	})
	return c
}

func eventuallyTrue(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(2 * time.Millisecond)
	}
}
