package redisbroker_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"github.com/wszero/wszero"
	"github.com/wszero/wszero/redisbroker"
)

// recorder is a wszero.Node without a server: it keeps what its broker
// hands it, so that a test sees the broker's own work (signals, and the
// targets of frames) rather than a server's.
type recorder struct {
	id string
	b  *redisbroker.Broker

	mu      sync.Mutex
	got     []received
	members map[string]int
	more    chan struct{}
}

// received is one thing a recorder's broker handed it.
type received struct {
	signal bool
	from   string        // a signal's sender
	to     wszero.Target // a frame's target
	data   string
}

func (r *recorder) ID() string { return r.id }

func (r *recorder) Deliver(to wszero.Target, frame []byte) {
	r.add(received{to: to, data: string(frame)})
}

func (r *recorder) Signal(from string, msg []byte) {
	r.add(received{signal: true, from: from, data: string(msg)})
}

func (r *recorder) Members(group string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.members[group]
}

func (r *recorder) add(x received) {
	r.mu.Lock()
	r.got = append(r.got, x)
	r.mu.Unlock()
	select {
	case r.more <- struct{}{}:
	default:
	}
}

// take waits until n things have arrived, and takes them.
func (r *recorder) take(t *testing.T, n int) []received {
	t.Helper()
	deadline := time.NewTimer(testTimeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		if len(r.got) >= n {
			got := r.got[:n:n]
			r.got = r.got[n:]
			r.mu.Unlock()
			return got
		}
		have := len(r.got)
		r.mu.Unlock()
		select {
		case <-r.more:
		case <-deadline.C:
			t.Fatalf("node %s: %d things arrived in %v, want %d", r.id, have, testTimeout, n)
		}
	}
}

// join makes group have a member on r, and waits until r's broker has
// subscribed.
func (r *recorder) join(t *testing.T, group string) {
	t.Helper()
	r.mu.Lock()
	r.members[group]++
	r.mu.Unlock()
	r.b.GroupChanged(group)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	require.NoError(t, r.b.WaitGroup(ctx, group, true))
}

// recorders starts a broker on Redis for each of the node IDs, each with a
// recorder for its node, and closes them when the test ends.
func recorders(t *testing.T, redisURL string, logs *logLines, ids ...string) []*recorder {
	t.Helper()
	var rs []*recorder
	for _, id := range ids {
		b, err := redisbroker.Connect(redisURL, redisbroker.WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
		require.NoError(t, err)
		r := &recorder{id: id, b: b, members: map[string]int{}, more: make(chan struct{}, 1)}
		require.NoError(t, b.Start(r))
		t.Cleanup(func() { require.NoError(t, b.Close(context.Background())) })
		rs = append(rs, r)
	}
	return rs
}

func TestSignalsReachOneNodeOrEveryOtherInOrderAndNeverTheSender(t *testing.T) {
	srv := startRedis(t)
	rs := recorders(t, srv.URL(), &logLines{wrote: make(chan struct{}, 1)}, "nodeA", "nodeB", "nodeC")
	a, b, c := rs[0], rs[1], rs[2]
	const count = 100
	for k := range count {
		require.NoError(t, a.b.Signal("", fmt.Appendf(nil, "all %d", k)))
		require.NoError(t, a.b.Signal(b.id, fmt.Appendf(nil, "to B %d", k)))
	}
	// B has both kinds, in the order A sent them, though they came on two
	// channels; C has those to all.
	got := b.take(t, 2*count)
	for k := range count {
		require.Equal(t, received{signal: true, from: "nodeA", data: fmt.Sprintf("all %d", k)}, got[2*k])
		require.Equal(t, received{signal: true, from: "nodeA", data: fmt.Sprintf("to B %d", k)}, got[2*k+1])
	}
	got = c.take(t, count)
	for k := range count {
		require.Equal(t, received{signal: true, from: "nodeA", data: fmt.Sprintf("all %d", k)}, got[k])
	}
	// Redis had taken all of A's signals before B's marker: an echo of any
	// of them to A would have come before it.
	require.NoError(t, b.b.Signal(a.id, []byte("marker")))
	require.Equal(t, []received{{signal: true, from: "nodeB", data: "marker"}}, a.take(t, 1))

	// The largest signal, every byte value in it, arrives unchanged.
	big := make([]byte, wszero.MaxSignal)
	for i := range big {
		big[i] = byte(i * 7)
	}
	require.NoError(t, c.b.Signal(a.id, big))
	require.Equal(t, string(big), a.take(t, 1)[0].data)
	require.ErrorContains(t, c.b.Signal(a.id, append(big, 0)), "over wszero.MaxSignal")
	require.ErrorContains(t, c.b.Signal("not.a node", nil), "not a node ID")
}

func TestFramesCarryTheirWholeTarget(t *testing.T) {
	srv := startRedis(t)
	logs := &logLines{wrote: make(chan struct{}, 1)}
	rs := recorders(t, srv.URL(), logs, "nodeA", "nodeB", "nodeC")
	a, b, c := rs[0], rs[1], rs[2]
	c.join(t, "a group")
	require.Equal(t, []string{"a group"}, c.b.Groups())

	require.NoError(t, a.b.Publish(wszero.Target{}, []byte("to all")))
	require.NoError(t, a.b.Publish(wszero.Target{Group: "a group"}, []byte("to the group")))
	require.NoError(t, a.b.Publish(wszero.Target{Client: "nodeB.x"}, []byte("to B's client")))
	require.NoError(t, a.b.Publish(wszero.Target{Group: "a group", Client: "nodeC.y"}, []byte("to C's y, or a member")))
	require.NoError(t, a.b.Publish(wszero.Target{}, []byte("end")))
	require.Equal(t, []received{
		{data: "to all"},
		{to: wszero.Target{Client: "nodeB.x"}, data: "to B's client"},
		{data: "end"},
	}, b.take(t, 3))
	require.Equal(t, []received{
		{data: "to all"},
		{to: wszero.Target{Group: "a group"}, data: "to the group"},
		{to: wszero.Target{Group: "a group", Client: "nodeC.y"}, data: "to C's y, or a member"},
		{data: "end"},
	}, c.take(t, 4))
	require.ErrorContains(t, a.b.Publish(wszero.Target{Client: "no node"}, nil), "not the ID of a client in a cluster")

	// Another program's message on the channels is dropped, and logged.
	other := redis.NewClient(&redis.Options{Addr: strings.TrimPrefix(srv.URL(), "redis://")})
	defer other.Close()
	require.NoError(t, other.Publish(context.Background(), "wszero.all", "hello").Err())
	logs.wait(t, "a message in a form this version does not know was dropped")
	require.NoError(t, a.b.Publish(wszero.Target{}, []byte("after")))
	require.Equal(t, "after", b.take(t, 1)[0].data, "and nothing else")
}
