package redisbroker_test

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"github.com/wszero/wszero"
	"github.com/wszero/wszero/redisbroker"
)

func TestBroadcastReachesEveryNodeOnceInOrder(t *testing.T) {
	_, nodes := cluster(t, 3)
	var peers []*peer
	for _, n := range nodes {
		peers = append(peers, dial(t, n), dial(t, n))
	}
	const count = 200
	from := sendAll(t, nodes, count, func(i int, p wszero.Params) error { return nodes[i].s.Broadcast("msg", p) })
	for _, p := range peers {
		expectSequences(t, p, "msg", from, count)
	}
	require.Len(t, nodes[0].s.Clients(), 2, "Clients stays node-local")
}

func TestGroupsAreSubscribedOnlyWhileTheyHaveMembers(t *testing.T) {
	r, nodes := cluster(t, 3)
	red0, blue0, red1, other2 := dial(t, nodes[0]), dial(t, nodes[0]), dial(t, nodes[1]), dial(t, nodes[2])
	require.NoError(t, red0.client(t).AddToGroup("red team")) // any name, spaces and dots included
	require.NoError(t, red1.client(t).AddToGroup("red team"))
	require.NoError(t, blue0.client(t).AddToGroup("blue.*"))
	subscribed(t, nodes[0], "red team", true)
	subscribed(t, nodes[1], "red team", true)
	subscribed(t, nodes[0], "blue.*", true)
	require.Empty(t, nodes[2].b.Groups(), "node 2 hosts no group")
	// Redis itself says who receives a group's broadcasts: the two nodes
	// that host members, not node 2.
	require.Equal(t, map[string]int64{groupChannel("red team"): 2, groupChannel("blue.*"): 1},
		r.numSub(t, groupChannel("red team"), groupChannel("blue.*")))

	const count = 100
	from := sendAll(t, nodes, count, func(i int, p wszero.Params) error { return nodes[i].s.BroadcastTo("red team", "msg", p) })
	expectSequences(t, red0, "msg", from, count)
	expectSequences(t, red1, "msg", from, count)
	// Every node's marker to everyone, after its group messages: a group
	// message for the others would have come before it.
	for i, n := range nodes {
		require.NoError(t, n.s.Broadcast("msg", endMarker(from[i])))
	}
	for _, p := range []*peer{blue0, other2} {
		expectSequences(t, p, "msg", from, 0)
	}

	// The last member here leaves: the node unsubscribes.
	red1.client(t).RemoveFromGroup("red team")
	subscribed(t, nodes[1], "red team", false)
	red0.Close() // a disconnect leaves every group, too
	subscribed(t, nodes[0], "red team", false)
	subscribed(t, nodes[0], "blue.*", true)
	require.Equal(t, map[string]int64{groupChannel("red team"): 0, groupChannel("blue.*"): 1},
		r.numSub(t, groupChannel("red team"), groupChannel("blue.*")))
}

func TestSendToReachesAClientOnAnyNode(t *testing.T) {
	_, nodes := cluster(t, 3)
	var peers []*peer
	for _, n := range nodes {
		peers = append(peers, dial(t, n))
	}
	for _, p := range peers {
		require.Equal(t, p.node.s.Node(), wszero.NodeOf(p.id))
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
	for _, p := range peers {
		expectSequences(t, p, "msg", from, count)
	}

	// A client of another node that has gone: handed over, and dropped
	// there. Not an ID at all: ErrClosed.
	gone := dial(t, nodes[0])
	goneID := gone.id
	gone.Close()
	require.NoError(t, nodes[1].s.SendTo(goneID, "msg", nil))
	require.ErrorIs(t, nodes[1].s.SendTo("no such client", "msg", nil), wszero.ErrClosed)
}

func TestSendToOneTakesTheMembersOfEveryNodeInTurn(t *testing.T) {
	_, nodes := cluster(t, 3)
	joined := make(chan wszero.PresenceChange, 16)
	nodes[0].s.OnPresence(func(c wszero.PresenceChange) { joined <- c })
	workers := []*peer{dial(t, nodes[1]), dial(t, nodes[1]), dial(t, nodes[2])}
	for _, w := range workers {
		require.NoError(t, w.client(t).AddToGroup("workers"))
	}
	// Node 0, which hosts no worker, learns of them from the others'
	// presence signals.
	for range workers {
		select {
		case c := <-joined:
			require.Equal(t, wszero.Joined, c.Kind)
		case <-t.Context().Done():
			t.Fatal("the test ended first")
		}
	}
	members, err := nodes[0].s.Presence(t.Context(), "workers")
	require.NoError(t, err)
	require.Len(t, members, len(workers))

	const rounds = 10
	for k := range rounds * len(workers) {
		require.NoError(t, nodes[0].s.SendToOne("workers", "job", wszero.Params{"n": k}))
	}
	require.NoError(t, nodes[0].s.Broadcast("job", endMarker("node0")))
	for _, w := range workers {
		last := -1
		for range rounds {
			k := int(w.Expect("job")["n"].(float64))
			require.Greater(t, k, last, "worker %s: jobs in order", w.id)
			last = k
		}
		require.Equal(t, true, w.Expect("job")["end"], "worker %s: its turns, and no more", w.id)
	}

	// A message for one member that has left goes to another member of
	// the group on its node: the broker delivers both fields of the
	// target.
	frame := []byte(`{"op":"job","n":"for anyone"}`)
	to := wszero.Target{Group: "workers", Client: nodes[2].s.Node() + ".gone"}
	require.NoError(t, nodes[0].b.Publish(to, frame))
	require.Equal(t, "for anyone", workers[2].Expect("job")["n"])
}

func TestShutdownFlushesWhatWasQueued(t *testing.T) {
	_, nodes := cluster(t, 2)
	p := dial(t, nodes[1])
	const count = 1000 // under the server's send queue
	for k := range count {
		require.NoError(t, nodes[0].s.Broadcast("msg", numbered("node0", k)))
	}
	require.NoError(t, nodes[0].s.Broadcast("msg", endMarker("node0")))
	nodes[0].ws.Close() // at once: the queue must be published first
	expectSequences(t, p, "msg", []string{"node0"}, count)
	err := nodes[0].b.Publish(wszero.Target{}, []byte(`{"op":"late"}`))
	require.ErrorIs(t, err, redisbroker.ErrClosed)
	require.ErrorIs(t, nodes[0].b.Signal("", []byte("late")), redisbroker.ErrClosed)
	require.NoError(t, nodes[0].b.Close(t.Context()), "a second Close")
}

func TestPublishNeverBlocksAndSaysWhenOtherNodesAreOutOfReach(t *testing.T) {
	r := startRedis(t)
	n := startNode(t, r.URL(), []redisbroker.Option{redisbroker.WithQueue(4, 1<<20)}, wszero.WithSendQueue(100000, 1<<30))
	p := dial(t, n)
	r.stop()
	n.logs.wait(t, "cannot reach Redis")

	var failed error
	const count = 10000
	for k := range count {
		if err := n.s.Broadcast("msg", numbered("node0", k)); err != nil && failed == nil {
			failed = err
		}
	}
	_ = n.s.Broadcast("msg", endMarker("node0")) // delivered here, if not queued
	require.ErrorIs(t, failed, redisbroker.ErrQueueFull, "a queue of 4 cannot hold 10,000 messages")
	require.ErrorContains(t, failed, "delivered on this server, but not to the others")
	require.True(t, n.logs.has("the publishing queue is full"))
	expectSequences(t, p, "msg", []string{"node0"}, count)

	// Shutting down while Redis is away does not wait for it: what was
	// queued is dropped, and said so.
	err := n.shutdown(t)
	require.ErrorContains(t, err, "messages for other nodes were dropped at Close: Redis cannot be reached")
}

func TestConnectFailsWhenRedisIsNotThere(t *testing.T) {
	r := startRedis(t)
	r.stop()
	_, err := redisbroker.Connect(r.URL(), redisbroker.WithLogger(logger()))
	require.ErrorContains(t, err, "cannot connect to Redis at redis://127.0.0.1:")

	_, err = redisbroker.Connect("http://user:secret@127.0.0.1:1", redisbroker.WithLogger(logger()))
	require.ErrorContains(t, err, "is not a Redis URL")
	require.NotContains(t, err.Error(), "secret", "the password stays out of errors")
}

func TestChannelPrefixKeepsApplicationsApart(t *testing.T) {
	r := startRedis(t)
	a0 := startNode(t, r.URL(), []redisbroker.Option{redisbroker.WithChannelPrefix("acme.chat")})
	a1 := startNode(t, r.URL(), []redisbroker.Option{redisbroker.WithChannelPrefix("acme.chat")})
	other := startNode(t, r.URL(), nil)
	require.Equal(t, map[string]int64{"acme.chat.all": 2, "wszero.all": 1}, r.numSub(t, "acme.chat.all", "wszero.all"))
	p1, pOther := dial(t, a1), dial(t, other)
	require.NoError(t, a0.s.Broadcast("hi", nil))
	p1.Expect("hi")
	require.NoError(t, other.s.Broadcast("own", nil))
	pOther.Expect("own")

	require.Panics(t, func() { redisbroker.WithChannelPrefix("a*") })
	require.Panics(t, func() { redisbroker.WithChannelPrefix("") })
	require.Panics(t, func() { redisbroker.WithQueue(0, 1) })
}

func TestRootModuleDoesNotRequireRedis(t *testing.T) {
	for _, f := range []string{"../go.mod", "../go.sum"} {
		data, err := os.ReadFile(f)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		require.NoError(t, err)
		require.False(t, strings.Contains(string(data), "redis"), "%s names redis: only this nested module may", f)
	}
}

func TestBrokerIsABroker(t *testing.T) {
	var _ wszero.Broker = (*redisbroker.Broker)(nil)
	r := startRedis(t)
	b, err := redisbroker.Connect(r.URL(), redisbroker.WithLogger(logger()))
	require.NoError(t, err)
	require.ErrorContains(t, b.Publish(wszero.Target{}, nil), "has not started")
	require.NoError(t, b.Close(t.Context()), "a broker never started closes")
	require.ErrorIs(t, b.Start(nil), redisbroker.ErrClosed)
	require.Equal(t, fmt.Sprint(redisbroker.ErrClosed), "redisbroker: the broker is closed")
}

// TestAnACLUserNeedsOnlyPubSub: the package doc's ACL rule is enough.
func TestAnACLUserNeedsOnlyPubSub(t *testing.T) {
	r := startRedis(t)
	admin := redis.NewClient(&redis.Options{Addr: strings.TrimPrefix(r.URL(), "redis://")})
	defer admin.Close()
	require.NoError(t, admin.Do(t.Context(), "ACL", "SETUSER", "chat", "on", ">s3cret", "+@pubsub", "+@connection", "&wszero.*").Err())
	url := strings.Replace(r.URL(), "redis://", "redis://chat:s3cret@", 1)
	nodes := []*node{startNode(t, url, nil), startNode(t, url, nil)}
	p0, p1 := dial(t, nodes[0]), dial(t, nodes[1])
	require.NoError(t, p1.client(t).AddToGroup("g"))
	subscribed(t, nodes[1], "g", true)
	from := sendAll(t, nodes, 10, func(i int, p wszero.Params) error { return nodes[i].s.BroadcastTo("g", "msg", p) })
	expectSequences(t, p1, "msg", from, 10)
	require.NoError(t, nodes[1].s.SendTo(p0.id, "msg", endMarker("node1")))
	expectSequences(t, p0, "msg", []string{"node1"}, 0)
	for _, n := range nodes {
		require.False(t, n.logs.has("level=WARN"), "no warnings")
	}

	_, err := redisbroker.Connect(strings.Replace(url, "s3cret", "wrong", 1), redisbroker.WithLogger(logger()))
	require.ErrorContains(t, err, "cannot connect to Redis at redis://chat:xxxxx@127.0.0.1:")
	require.NotContains(t, err.Error(), "wrong")
}
