package natsbroker_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
	"github.com/wszero/wszero"
	"github.com/wszero/wszero/natsbroker"
)

// sendAll has every node send n numbered messages with send, each node from
// its own goroutine, at once.
func sendAll(t *testing.T, nodes []*node, n int, send func(i int, p wszero.Params) error) []string {
	t.Helper()
	from := make([]string, len(nodes))
	var wg sync.WaitGroup
	errs := make(chan error, len(nodes))
	for i := range nodes {
		from[i] = fmt.Sprintf("node%d", i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range n {
				if err := send(i, wszero.Params{"from": from[i], "n": k}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	return from
}

// endMarkers has every node send a marker after its messages: once a client
// has every node's marker, any duplicate of an earlier message would have
// come before it, since each node's messages arrive in order.
func endMarkers(t *testing.T, nodes []*node, send func(i int) error) {
	t.Helper()
	for i := range nodes {
		require.NoError(t, send(i))
	}
}

func TestBroadcastReachesEveryNodeOnceInOrder(t *testing.T) {
	_, nodes := cluster(t, 3)
	var peers []*peer
	for _, n := range nodes {
		peers = append(peers, dial(t, n), dial(t, n))
	}
	const count = 200
	from := sendAll(t, nodes, count, func(i int, p wszero.Params) error { return nodes[i].s.Broadcast("msg", p) })
	endMarkers(t, nodes, func(i int) error { return nodes[i].s.Broadcast("end", nil) })
	for i, p := range peers {
		p.waitFor("end", len(nodes))
		checkSequence(t, fmt.Sprintf("peer %d", i), p.messages("msg"), from, count)
	}
	// The package-level form and Clients stay node-local.
	require.Len(t, nodes[0].s.Clients(), 2)
}

func TestBroadcastToReachesOnlyTheGroupAndOnlyNodesHostingIt(t *testing.T) {
	_, nodes := cluster(t, 3)
	red0, blue0, red1, other2 := dial(t, nodes[0]), dial(t, nodes[0]), dial(t, nodes[1]), dial(t, nodes[2])
	require.NoError(t, red0.client().AddToGroup("red team")) // any name, spaces and dots included
	require.NoError(t, red1.client().AddToGroup("red team"))
	require.NoError(t, blue0.client().AddToGroup("blue.*"))
	subscribed(t, nodes[0], "red team", true)
	subscribed(t, nodes[1], "red team", true)
	subscribed(t, nodes[0], "blue.*", true)
	require.Empty(t, nodes[2].b.Groups(), "node 2 hosts no group")

	// Node 2 hosts no member: it receives no group traffic at all.
	inBefore := nodes[2].b.Conn().Stats().InMsgs
	const count = 100
	from := sendAll(t, nodes, count, func(i int, p wszero.Params) error { return nodes[i].s.BroadcastTo("red team", "msg", p) })
	endMarkers(t, nodes, func(i int) error { return nodes[i].s.BroadcastTo("red team", "end", nil) })
	for name, p := range map[string]*peer{"red0": red0, "red1": red1} {
		p.waitFor("end", len(nodes))
		checkSequence(t, name, p.messages("msg"), from, count)
	}
	// A send to node 2 from each node comes after that node's group
	// messages: once they are in, node 2 has seen all it was going to.
	for i := range nodes {
		require.NoError(t, nodes[i].s.SendTo(other2.id, "marker", nil))
	}
	other2.waitFor("marker", len(nodes))
	require.Equal(t, inBefore+uint64(len(nodes)-1), nodes[2].b.Conn().Stats().InMsgs, "node 2 received only the markers from the 2 other nodes")
	require.Empty(t, blue0.messages("msg"))
	require.Empty(t, other2.messages("msg"))

	// Counting members over the cluster, from a node with none and from
	// one with some: the presence signals of the joins came before the
	// markers.
	ctx := context.Background()
	n, err := nodes[2].s.CountMembers(ctx, "red team")
	require.NoError(t, err)
	require.Equal(t, 2, n)
	n, err = nodes[0].s.CountMembers(ctx, "red team")
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.Len(t, nodes[0].s.Members("red team"), 1, "Members stays node-local")

	// The last member here leaves: the node unsubscribes.
	red1.client().RemoveFromGroup("red team")
	subscribed(t, nodes[1], "red team", false)
	red0.conn.Close() // a disconnect leaves every group, too
	subscribed(t, nodes[0], "red team", false)
	subscribed(t, nodes[0], "blue.*", true)
	// The presence signals of the leaves come before these markers.
	for i := range 2 {
		require.NoError(t, nodes[i].s.SendTo(other2.id, "left", nil))
	}
	other2.waitFor("left", 2)
	n, err = nodes[2].s.CountMembers(ctx, "red team")
	require.NoError(t, err)
	require.Equal(t, 0, n)
}

func TestSendToReachesAClientOnAnyNode(t *testing.T) {
	_, nodes := cluster(t, 3)
	var peers []*peer
	for _, n := range nodes {
		peers = append(peers, dial(t, n))
	}
	ids := map[string]bool{}
	for _, p := range peers {
		require.NotContains(t, ids, p.id)
		ids[p.id] = true
		require.NotEmpty(t, wszero.NodeOf(p.id))
	}
	const count = 100
	from := sendAll(t, nodes, count, func(i int, p wszero.Params) error {
		for _, to := range peers {
			if err := nodes[i].s.SendTo(to.id, "msg", p); err != nil {
				return err
			}
		}
		return nil
	})
	endMarkers(t, nodes, func(i int) error {
		for _, to := range peers {
			if err := nodes[i].s.SendTo(to.id, "end", nil); err != nil {
				return err
			}
		}
		return nil
	})
	for i, p := range peers {
		p.waitFor("end", len(nodes))
		checkSequence(t, fmt.Sprintf("peer %d", i), p.messages("msg"), from, count)
	}

	// A client of this node that has gone: ErrClosed. One of another node:
	// handed over and dropped there. Not an ID at all: ErrClosed.
	gone := dial(t, nodes[0])
	gone.conn.Close()
	eventually(t, "the client to leave", func() bool { return len(nodes[0].s.Clients()) == 1 })
	require.ErrorIs(t, nodes[0].s.SendTo(gone.id, "msg", nil), wszero.ErrClosed)
	require.NoError(t, nodes[1].s.SendTo(gone.id, "msg", nil))
	require.ErrorIs(t, nodes[1].s.SendTo("no such client", "msg", nil), wszero.ErrClosed)
}

func TestNATSRestartDeliveryResumes(t *testing.T) {
	ns, nodes := cluster(t, 3)
	var peers []*peer
	for _, n := range nodes {
		p := dial(t, n)
		require.NoError(t, p.client().AddToGroup("g"))
		peers = append(peers, p)
	}
	for _, n := range nodes {
		subscribed(t, n, "g", true)
	}
	require.NoError(t, nodes[0].s.Broadcast("before", nil))
	for _, p := range peers {
		p.waitFor("before", 1)
	}

	natsURL := ns.ClientURL()
	stopNATS(ns)
	for _, n := range nodes {
		eventually(t, "the brokers to see NATS gone", func() bool { return !n.b.Conn().IsConnected() })
		eventually(t, "the drop to be logged", func() bool { return n.logs.logged("disconnected from NATS") })
	}

	// While NATS is away: local delivery goes on, and nothing blocks.
	for k := range 1000 {
		done := make(chan error, 1)
		go func() { done <- nodes[0].s.BroadcastTo("g", "away", wszero.Params{"n": k}) }()
		select {
		case err := <-done:
			require.NoError(t, err) // nats.go's reconnect buffer holds it
		case <-time.After(testTimeout):
			t.Fatal("BroadcastTo blocked while NATS was away")
		}
	}
	peers[0].waitFor("away", 1000)
	// Counting asks nothing of NATS: it answers at once from what the
	// other nodes said before (until they have been silent too long).
	err := within(t, "CountMembers while NATS is away", func() error {
		n, err := nodes[0].s.CountMembers(context.Background(), "g")
		if err == nil && (n < 1 || n > len(nodes)) {
			err = fmt.Errorf("CountMembers counts %d members", n)
		}
		return err
	})
	require.NoError(t, err)

	// NATS comes back on the same port; the brokers reconnect and subscribe again.
	startNATS(t, portOf(t, natsURL))
	for _, n := range nodes {
		eventually(t, "the brokers to reconnect", func() bool { return n.b.Conn().IsConnected() })
		eventually(t, "the reconnection to be logged", func() bool { return n.logs.logged("reconnected to NATS") })
		require.NoError(t, n.b.Conn().Flush())
	}
	// Every node's subscriptions are back once a probe from each node
	// reaches everyone.
	for i, n := range nodes {
		eventually(t, fmt.Sprintf("a probe from node %d to reach every node", i), func() bool {
			require.NoError(t, n.s.BroadcastTo("g", "probe", wszero.Params{"from": i}))
			for _, p := range peers {
				ok := false
				for _, m := range p.messages("probe") {
					if m["from"] == float64(i) {
						ok = true
					}
				}
				if !ok {
					return false
				}
			}
			return true
		})
	}
	const count = 100
	from := sendAll(t, nodes, count, func(i int, p wszero.Params) error { return nodes[i].s.BroadcastTo("g", "msg", p) })
	endMarkers(t, nodes, func(i int) error { return nodes[i].s.Broadcast("end", nil) })
	for i, p := range peers {
		p.waitFor("end", len(nodes))
		checkSequence(t, fmt.Sprintf("peer %d", i), p.messages("msg"), from, count)
	}
}

func TestShutdownDrainsWhatWasPublished(t *testing.T) {
	_, nodes := cluster(t, 2)
	p := dial(t, nodes[1])
	const count = 1000
	for k := range count {
		require.NoError(t, nodes[0].s.Broadcast("msg", wszero.Params{"from": "node0", "n": k}))
	}
	nodes[0].shutdown(t) // at once: the queue and NATS's buffers must be sent first
	p.waitFor("msg", count)
	checkSequence(t, "peer", p.messages("msg"), []string{"node0"}, count)
	err := nodes[0].b.Publish(wszero.Target{}, []byte(`{"op":"late"}`))
	require.True(t, errors.Is(err, natsbroker.ErrClosed), "Publish after Close: %v", err)
}

func TestPublishNeverBlocksAndSaysWhenOtherNodesAreOutOfReach(t *testing.T) {
	ns := startNATS(t, -1)
	b, err := natsbroker.Connect(ns.ClientURL(), natsbroker.WithLogger(logger()), natsbroker.WithQueue(4),
		natsbroker.WithNATSOptions(nats.ReconnectBufSize(1024)))
	require.NoError(t, err)
	s := wszero.New(wszero.WithBroker(b), wszero.WithLogger(logger()), wszero.WithSendQueue(100000, 1<<30))
	s.On("hello", func(c *wszero.Client) string { return c.ID() })
	ts := httptest.NewServer(s)
	n := &node{s: s, b: b, ts: ts, url: "ws" + strings.TrimPrefix(ts.URL, "http") + "/ws"}
	t.Cleanup(func() { n.shutdown(t) })
	p := dial(t, n)

	stopNATS(ns)
	eventually(t, "the broker to see NATS gone", func() bool { return !b.Conn().IsConnected() })
	var failed error
	const count = 10000
	start := time.Now()
	for k := range count {
		if err := s.Broadcast("msg", wszero.Params{"from": "node0", "n": k}); err != nil && failed == nil {
			failed = err
		}
	}
	t.Logf("%d broadcasts with NATS away in %v", count, time.Since(start))
	require.ErrorIs(t, failed, natsbroker.ErrQueueFull, "the queue and the 1 KiB reconnect buffer cannot hold 10,000 messages")
	require.ErrorContains(t, failed, "delivered on this server, but not to the others")
	checkSequence(t, "the local client", p.waitFor("msg", count), []string{"node0"}, count)
}

func TestConnectFailsWhenNATSIsNotThere(t *testing.T) {
	ns := startNATS(t, -1)
	natsURL := ns.ClientURL()
	stopNATS(ns)
	_, err := natsbroker.Connect(natsURL, natsbroker.WithLogger(logger()))
	require.ErrorContains(t, err, "cannot connect to NATS")
}
