package wszero

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
	"github.com/wszero/wszero/internal/protocol"
)

// The cluster's side of presence (every node's members, a node going
// away) is checked by the conformance suite, package brokertest, on every
// engine. These tests check one node, and the repairs that need a broker
// that loses signals on purpose.

func TestPresenceListsMembersWithIdentityAndAway(t *testing.T) {
	type who struct {
		Name string `json:"name"`
	}
	s := newSessionServer(t, WithAuthenticate(func(r *http.Request) (any, error) {
		return who{Name: r.URL.Query().Get("name")}, nil
	}))
	ctx := context.Background()
	s.On("sit", func(c *Client) error { return c.AddToGroup("table") })

	var peers []*sessionPeer
	for _, name := range []string{"ada", "bo"} {
		d := *websocket.DefaultDialer
		d.Subprotocols = []string{protocol.SubprotocolJSON}
		p := &sessionPeer{peer: dialURL(t, &d, wsURL(s.ts, "/ws?name="+name), nil)}
		first := p.read()
		p.id = first["id"].(string)
		receive(t, s.connects, "connect")
		p.call(1, map[string]any{"op": "sit"})
		peers = append(peers, p)
	}
	members, err := s.Presence(ctx, "table")
	require.NoError(t, err)
	require.Len(t, members, 2)
	for i, m := range members {
		require.Equal(t, peers[i].id, m.ID, "in the order they joined")
		require.Equal(t, "", m.Node, "no broker: no node")
		require.False(t, m.Joined.IsZero())
		require.WithinDuration(t, time.Now(), m.Joined, time.Minute)
		require.False(t, m.Away)
	}
	require.JSONEq(t, `{"name":"ada"}`, string(members[0].Identity))
	require.JSONEq(t, `{"name":"bo"}`, string(members[1].Identity))
	n, err := s.CountMembers(ctx, "table")
	require.NoError(t, err)
	require.Equal(t, 2, n)

	s.drop(t, peers[1])
	members, err = s.Presence(ctx, "table")
	require.NoError(t, err)
	require.Len(t, members, 2, "an away member is still a member")
	require.True(t, members[1].Away)

	none, err := s.Presence(ctx, "nobody here")
	require.NoError(t, err)
	require.Empty(t, none)
	_, err = s.Presence(ctx, "_mine")
	require.ErrorContains(t, err, "reserved")
}

func TestGroupJoinAndLeaveOpsRunOnTheLoop(t *testing.T) {
	s, ts := newTestServer(t)
	events := make(chan string, 16)
	s.On("group_join", func(c *Client, p struct{ Group string }) { events <- "join " + p.Group })
	s.On("group_leave", func(c *Client, p struct{ Group string }) {
		events <- fmt.Sprintf("leave %s (still in %v)", p.Group, c.Groups())
	})
	s.On("join", func(c *Client, p struct{ Group string }) error { return c.AddToGroup(p.Group) })
	s.On("leave", func(c *Client, p struct{ Group string }) { c.RemoveFromGroup(p.Group) })
	p := dial(t, ts)
	p.call(1, map[string]any{"op": "join", "group": "red"})
	require.Equal(t, "join red", receive(t, events, "group_join"))
	p.call(2, map[string]any{"op": "join", "group": "red"})
	p.call(3, map[string]any{"op": "join", "group": "blue"})
	require.Equal(t, "join blue", receive(t, events, "group_join"), "joining again raises nothing")
	p.call(4, map[string]any{"op": "leave", "group": "red"})
	require.Equal(t, "leave red (still in [blue])", receive(t, events, "group_leave"))
	p.conn.Close()
	require.Equal(t, "leave blue (still in [blue])", receive(t, events, "group_leave"),
		"a client that disconnects leaves its groups; Groups still tells them, as in its disconnect handler")

	// A client can never raise them itself.
	q := dial(t, ts)
	q.send(map[string]any{"op": "group_join", "group": "x"})
	require.Contains(t, q.expect("error")["msg"], "group_join")
	select {
	case e := <-events:
		t.Fatalf("a client raised %q", e)
	default:
	}
}

func TestSendToOneTakesTurns(t *testing.T) {
	s, ts := newTestServer(t)
	require.ErrorIs(t, s.SendToOne("workers", "job", nil), ErrNoMembers)
	require.ErrorContains(t, s.SendToOne("", "job", nil), "needs a name")

	var peers []*peer
	for range 3 {
		peers = append(peers, dial(t, ts))
	}
	eventuallyTrue(t, func() bool { return len(s.Clients()) == 3 })
	for _, c := range s.Clients() {
		require.NoError(t, c.AddToGroup("workers"))
	}
	for i := range 9 {
		require.NoError(t, s.SendToOne("workers", "job", Params{"n": i}))
	}
	require.Equal(t, []int{3, 3, 3}, jobsOf(peers), "each member takes every third job")

	// One leaves: the others share the work.
	s.Members("workers")[0].RemoveFromGroup("workers")
	for range 4 {
		require.NoError(t, s.SendToOne("workers", "job", nil))
	}
	require.Equal(t, []int{0, 2, 2}, jobsOf(peers), "the one that left takes none")
}

// jobsOf counts the jobs each peer has received, sorted: each asks for an
// op that does not exist, whose error comes after every job sent before.
func jobsOf(peers []*peer) []int {
	counts := make([]int, len(peers))
	for i, p := range peers {
		p.send(map[string]any{"op": "nothing more"})
		for {
			m := p.read()
			if m["op"] == "error" {
				break
			}
			require.Equal(p.t, "job", m["op"])
			counts[i]++
		}
	}
	slices.Sort(counts)
	return counts
}

// lossyBroker is a fakeBroker that loses the presence signals a test
// asks it to.
type lossyBroker struct {
	*fakeBroker
	lose func(msg []byte) bool
}

func (b *lossyBroker) Signal(node string, msg []byte) error {
	if b.lose != nil && b.lose(msg) {
		return nil
	}
	return b.fakeBroker.Signal(node, msg)
}

func TestPresenceRepairsALostSignal(t *testing.T) {
	hub := &fakeHub{}
	lost := make(chan string, 1)
	lossy := &lossyBroker{fakeBroker: hub.broker()}
	lossy.lose = func(msg []byte) bool {
		if strings.Contains(string(msg), `"k":"join"`) && strings.Contains(string(msg), `"g":"lost"`) {
			select {
			case lost <- string(msg):
				return true // once
			default:
			}
		}
		return false
	}
	a, tsA := newTestServer(t, WithBroker(lossy), WithPresenceInterval(20*time.Millisecond))
	b, _ := newTestServer(t, WithBroker(hub.broker()), WithPresenceInterval(20*time.Millisecond))
	dial(t, tsA)
	c := waitClient(t, a)
	eventuallyTrue(t, func() bool { return a.presence.knows(b.node) && b.presence.knows(a.node) })

	require.NoError(t, c.AddToGroup("lost"))
	receive(t, lost, "the lost join")
	// Nothing else is sent: the next hi says a signal is missing, and b
	// asks for a snapshot.
	eventuallyTrue(t, func() bool {
		n, err := b.CountMembers(context.Background(), "lost")
		return err == nil && n == 1
	})
	members, err := b.Presence(context.Background(), "lost")
	require.NoError(t, err)
	require.Equal(t, []string{c.ID()}, memberIDs(members))
	require.Equal(t, a.node, members[0].Node)
}

func TestSnapshotsOfManyGroupsComeInParts(t *testing.T) {
	hub := &fakeHub{}
	parts := make(chan int, 64)
	spy := &lossyBroker{fakeBroker: hub.broker()}
	spy.lose = func(msg []byte) bool {
		if strings.Contains(string(msg), `"k":"snap"`) {
			require.LessOrEqual(t, len(msg), MaxSignal)
			parts <- len(msg)
		}
		return false
	}
	a, tsA := newTestServer(t, WithBroker(spy), WithMaxGroupsPerClient(0))
	dial(t, tsA)
	c := waitClient(t, a)
	long := strings.Repeat("g", 200)
	for i := range 600 { // 600 × 200 bytes: more than two parts
		require.NoError(t, c.AddToGroup(fmt.Sprintf("%s%d", long, i)))
	}
	b, _ := newTestServer(t, WithBroker(hub.broker()))
	// Once b has heard of a, CountMembers waits for a's snapshot.
	eventuallyTrue(t, func() bool { return b.presence.knows(a.node) })
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	n, err := b.CountMembers(ctx, long+"599")
	require.NoError(t, err)
	require.Equal(t, 1, n)
	for i := range 600 {
		members, err := b.Presence(context.Background(), fmt.Sprintf("%s%d", long, i))
		require.NoError(t, err)
		require.Equal(t, []string{c.ID()}, memberIDs(members), "group %d", i)
	}
	require.GreaterOrEqual(t, len(parts), 3, "the snapshot came in parts")
}

func TestOnPresenceSeesAnotherNode(t *testing.T) {
	hub := &fakeHub{}
	a, _ := newTestServer(t, WithBroker(hub.broker()), WithPresenceInterval(20*time.Millisecond))
	b, tsB := newTestServer(t, WithBroker(hub.broker()), WithPresenceInterval(20*time.Millisecond))
	changes := make(chan PresenceChange, 16)
	a.OnPresence(func(ch PresenceChange) { changes <- ch })
	dial(t, tsB)
	c := waitClient(t, b)
	eventuallyTrue(t, func() bool { return a.presence.knows(b.node) })
	require.NoError(t, c.AddToGroup("room"))
	ch := receive(t, changes, "a join on b")
	require.Equal(t, Joined, ch.Kind)
	require.Equal(t, "room", ch.Group)
	require.Equal(t, c.ID(), ch.Member.ID)
	require.Equal(t, b.Node(), ch.Member.Node)
	require.Nil(t, ch.Client, "not a client of a")
	c.RemoveFromGroup("room")
	ch = receive(t, changes, "a leave on b")
	require.Equal(t, Left, ch.Kind)
	require.Equal(t, "joined left away back", strings.Join([]string{Joined.String(), Left.String(), WentAway.String(), CameBack.String()}, " "))
}

func memberIDs(ms []Member) []string {
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.ID
	}
	return ids
}

func TestGroupJoinHandlerMayTakeOnlyTheClient(t *testing.T) {
	s, _ := newTestServer(t)
	defer func() {
		v := recover()
		require.NotNil(t, v, "a group_leave handler that cannot take {group} is refused")
		require.Contains(t, fmt.Sprint(v), `the "group_leave" handler receives {"group": name}: take func(c *wszero.Client, p struct{ Group string })`)
	}()
	s.On("group_leave", func(c *Client, p struct{ Room string }) {})
}

func TestGroupJoinHandlerTakingOnlyTheClient(t *testing.T) {
	s, ts := newTestServer(t)
	joined := make(chan *Client, 1)
	s.On("group_join", func(c *Client) { joined <- c })
	dial(t, ts)
	c := waitClient(t, s)
	require.NoError(t, c.AddToGroup("g"))
	require.Same(t, c, receive(t, joined, "group_join"))
}

// TestASilentNodeIsForgottenAndLearnedAgain: a node the others do not
// hear from (a partition, a broker away) for three intervals is gone from
// their Presence, and back in it once it is heard again.
func TestASilentNodeIsForgottenAndLearnedAgain(t *testing.T) {
	hub := &fakeHub{}
	var mute atomic.Bool
	lossy := &lossyBroker{fakeBroker: hub.broker(), lose: func([]byte) bool { return mute.Load() }}
	interval := 20 * time.Millisecond
	a, tsA := newTestServer(t, WithBroker(lossy), WithPresenceInterval(interval))
	b, _ := newTestServer(t, WithBroker(hub.broker()), WithPresenceInterval(interval))
	changes := make(chan PresenceChange, 16)
	b.OnPresence(func(ch PresenceChange) { changes <- ch })
	dial(t, tsA)
	c := waitClient(t, a)
	eventuallyTrue(t, func() bool { return b.presence.knows(a.node) })
	require.NoError(t, c.AddToGroup("room"))
	require.Equal(t, Joined, receive(t, changes, "the join").Kind)

	mute.Store(true)
	start := time.Now()
	ch := receive(t, changes, "the node counted gone")
	silent := time.Since(start)
	require.Equal(t, Left, ch.Kind)
	require.Equal(t, c.ID(), ch.Member.ID)
	require.GreaterOrEqual(t, silent, presenceMisses*interval, "not before three intervals")
	n, err := b.CountMembers(context.Background(), "room")
	require.NoError(t, err)
	require.Zero(t, n)

	mute.Store(false)
	ch = receive(t, changes, "the node heard again")
	require.Equal(t, Joined, ch.Kind)
	require.Equal(t, c.ID(), ch.Member.ID)
	members, err := b.Presence(context.Background(), "room")
	require.NoError(t, err)
	require.Equal(t, []string{c.ID()}, memberIDs(members))
}
