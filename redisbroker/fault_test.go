package redisbroker_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/wszero/wszero"
)

// outage is how long Redis stays away in TestRedisRestart.
const outage = 3 * time.Second

// beat paces the work done while Redis is away: 150 rounds in the 3 s,
// under the clients' rate limit and, when the messages held meanwhile all
// arrive together, under their send queues (1,024 messages).
const beat = 20 * time.Millisecond

// returnsAtOnce runs fn and fails the test if it has not returned within
// a second: fn blocked.
func returnsAtOnce(t *testing.T, what string, fn func() error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	timer := time.NewTimer(time.Second)
	defer timer.Stop()
	select {
	case err := <-done:
		require.NoError(t, err, what)
	case <-timer.C:
		t.Fatalf("%s blocked while Redis was away", what)
	}
}

// TestRedisRestart stops Redis for 3 s and starts it again on the same
// port: meanwhile nothing blocks and local delivery goes on; afterwards
// delivery across nodes resumes, and nothing arrives twice or out of
// order.
func TestRedisRestart(t *testing.T) {
	r, nodes := cluster(t, 3)
	var peers []*peer
	for _, n := range nodes {
		p := dial(t, n)
		require.NoError(t, p.client(t).AddToGroup("g"))
		peers = append(peers, p)
	}
	for _, n := range nodes {
		subscribed(t, n, "g", true)
	}
	require.NoError(t, nodes[0].s.BroadcastTo("g", "before", nil))
	for _, p := range peers {
		p.Expect("before")
	}

	r.stop()
	for _, n := range nodes {
		n.logs.wait(t, "cannot reach Redis")
	}
	// While Redis is away: broadcasts, sends to other nodes and handlers
	// return at once, local delivery goes on, and a group joined now is
	// subscribed to when Redis is back.
	late := dial(t, nodes[2])
	require.NoError(t, late.client(t).AddToGroup("late"))
	away := 0
	end := time.NewTimer(outage)
	defer end.Stop()
	round := time.NewTicker(beat)
	defer round.Stop()
	for done := false; !done; {
		select {
		case <-end.C:
			done = true
			continue
		case <-round.C:
		}
		returnsAtOnce(t, "BroadcastTo", func() error {
			return nodes[0].s.BroadcastTo("g", "msg", wszero.Params{"from": "node0", "n": away, "away": true})
		})
		require.Equal(t, float64(away), peers[0].Expect("msg")["n"], "delivered on its own node at once")
		away++
		returnsAtOnce(t, "SendTo another node", func() error { return nodes[1].s.SendTo(peers[2].id, "ping", nil) })
		for _, p := range peers {
			returnsAtOnce(t, "a handler", func() error {
				if p.Call("hello", nil) != p.id {
					return fmt.Errorf("the hello handler of %s answered wrong", p.id)
				}
				return nil
			})
		}
	}

	r.restart(t)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	for _, n := range nodes {
		n.logs.wait(t, "reconnected to Redis; subscriptions restored")
		require.NoError(t, n.b.WaitConnection(ctx, 2), "every subscription made again on a new connection")
	}
	require.Equal(t, map[string]int64{groupChannel("g"): 3, groupChannel("late"): 1},
		r.numSub(t, groupChannel("g"), groupChannel("late")))

	const count = 100
	from := sendAll(t, nodes, count, func(i int, p wszero.Params) error { return nodes[i].s.BroadcastTo("g", "msg", p) })
	require.Zero(t, expectSequences(t, peers[0], "msg", from, count), "its own node's client had every away message at once, and no more")
	for _, p := range peers[1:] {
		got := expectSequences(t, p, "msg", from, count)
		t.Logf("client %s on another node received %d of the %d messages broadcast while Redis was away", p.id, got, away)
	}
	require.NoError(t, nodes[0].s.BroadcastTo("late", "late", nil))
	late.Expect("late")
}
