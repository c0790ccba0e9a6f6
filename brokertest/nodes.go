package brokertest

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wszero/wszero"
	"github.com/wszero/wszero/client"
)

// The subtests of nodes coming and going, and of sessions that move
// between them.

// testLateNode: a node that starts after the others learns who is in
// which group on each of them, with identities, however many groups:
// their snapshots come in parts, the largest signals a server sends.
func testLateNode(t *testing.T, su *suite) {
	su.needNodes(t, 2)
	cl := su.cluster(t, 2, config{opts: []wszero.Option{wszero.WithMaxGroupsPerClient(0)}})
	// 600 groups of 200-byte names: a snapshot of more than 120 KB,
	// which takes three signals.
	prefix := strings.Repeat("g", 200) + "-"
	const groups = 600
	a := cl.first().dial(t, dialOpts{name: "ada"})
	b := cl.last().dial(t, dialOpts{name: "bo"})
	a.call(t, "joinmany", wszero.Params{"prefix": prefix, "n": groups})
	b.call(t, "join", wszero.Params{"group": prefix + "0"})
	cl.waitChange(t, wszero.Joined, prefix+fmt.Sprint(groups-1), a.id)
	cl.waitChange(t, wszero.Joined, prefix+"0", b.id)

	// Once the late node has heard of the others (addNode waits for
	// that), what they told it is complete: not its OnPresence's
	// reports, which may have come before the suite could register its
	// function (New starts the broker).
	late := cl.addNode()
	for i := range groups {
		group := prefix + fmt.Sprint(i)
		want := []string{a.id + " " + cl.first().s.Node() + " " + identityJSON("ada")}
		if i == 0 {
			want = append(want, b.id+" "+cl.nodes[1].s.Node()+" "+identityJSON("bo"))
		}
		var got []string
		for _, m := range presence(t, late, group) {
			got = append(got, m.ID+" "+m.Node+" "+string(m.Identity))
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("the late node's Presence of group %d lists %q; want %q", i, got, want)
		}
	}
}

// testShutdown: a node that shuts down takes its members, connected and
// away, out of every other node's Presence at once: by saying so, not by
// falling silent (the presence interval of this subtest is an hour).
func testShutdown(t *testing.T, su *suite) {
	su.needNodes(t, 2)
	cl := su.cluster(t, 3, config{opts: []wszero.Option{wszero.WithPresenceInterval(time.Hour)}})
	doomed := cl.last()
	stays := cl.first().dial(t, dialOpts{name: "stays"})
	d1 := doomed.dial(t, dialOpts{name: "d1"})
	d2 := doomed.dial(t, dialOpts{name: "d2", proxy: true})
	members := []joined{join(t, cl.first(), stays, "room"), join(t, doomed, d1, "room"), join(t, doomed, d2, "room")}
	for _, j := range members {
		cl.waitChange(t, wszero.Joined, "room", j.c.id)
	}
	d2.proxy.Down()
	cl.waitChange(t, wszero.WentAway, "room", d2.id)

	doomed.shutdown()
	for _, c := range []*conn{d1, d2} {
		cl.waitChange(t, wszero.Left, "room", c.id)
	}
	for _, n := range cl.nodes[:len(cl.nodes)-1] {
		checkPresence(t, n, "room", members[:1], nil)
		if got := countMembers(t, n, "room"); got != 1 {
			t.Errorf("node %s: CountMembers counts %d members of room once node %s has shut down; want 1", n.name, got, doomed.name)
		}
	}
	// SendToOne takes no turn of theirs.
	sender := cl.first()
	for i := 1; i <= 3; i++ {
		sent(t, "SendToOne", sender.s.SendToOne("room", "job", wszero.Params{"s": "one", "n": i}))
	}
	stream := sender.name + ">" + stays.id
	sent(t, "SendTo", sender.s.SendTo(stays.id, "end", wszero.Params{"s": stream}))
	stays.expect(t, msg("job", "one", "n", 1), msg("job", "one", "n", 2), msg("job", "one", "n", 3), msg("end", stream))
}

// freshnessBound is how soon after a node goes silent (it stops, or is
// cut off, without Shutdown) the others must have taken its members out
// of Presence, in presence intervals: a node not heard for three of its
// intervals is counted gone at the others' next tick, one interval at
// most later. Measured from when it went silent, that is between two and
// four intervals, as its last hi may have come up to an interval before.
// The suite allows for the scheduling of a loaded machine on top
// (schedulingMargin).
const freshnessBound = 4

// schedulingMargin is what the suite allows on top of freshnessBound
// intervals for the goroutines involved to be scheduled.
const schedulingMargin = 500 * time.Millisecond

// testSilent: a node that goes silent (its broker closed underneath its
// server, which does not know) is gone from the others' Presence within
// freshnessBound presence intervals, its members with it.
func testSilent(t *testing.T, su *suite) {
	su.needNodes(t, 2)
	cl := su.cluster(t, 3, config{silenced: true})
	quiet := cl.last()
	stays := cl.first().dial(t, dialOpts{name: "stays"})
	q1 := quiet.dial(t, dialOpts{name: "q1"})
	q2 := quiet.dial(t, dialOpts{name: "q2"})
	members := []joined{join(t, cl.first(), stays, "room"), join(t, quiet, q1, "room"), join(t, quiet, q2, "room")}
	for _, j := range members {
		cl.waitChange(t, wszero.Joined, "room", j.c.id)
	}

	bound := freshnessBound*presenceInterval + schedulingMargin
	start := time.Now()
	quiet.silence(t)
	for _, n := range cl.nodes[:len(cl.nodes)-1] {
		for _, c := range []*conn{q1, q2} {
			what := fmt.Sprintf("node %s's OnPresence reporting that %s of the silent node %s left, within %d presence intervals of %v (and %v to be scheduled)",
				n.name, c.id, quiet.name, freshnessBound, presenceInterval, schedulingMargin)
			n.changes.waitFor(t, what, max(time.Until(start.Add(bound)), 0), func(list []wszero.PresenceChange) bool {
				return slices.IndexFunc(list, isChange(wszero.Left, "room", c.id)) >= 0
			})
		}
	}
	t.Logf("the silent node's members left the others' Presence %v after it went silent (%.1f intervals)", time.Since(start), float64(time.Since(start))/float64(presenceInterval))
	for _, n := range cl.nodes[:len(cl.nodes)-1] {
		checkPresence(t, n, "room", members[:1], nil)
		if got := countMembers(t, n, "room"); got != 1 {
			t.Errorf("node %s: CountMembers counts %d members of room once node %s went silent; want 1", n.name, got, quiet.name)
		}
	}
}

// testResume: a session client whose connection to one node drops comes
// back to another (a load balancer without sticky sessions) and resumes
// its session there: the same ID and groups; what its group and it were
// sent meanwhile, from its node and another, arrives once and in order;
// what it sent while disconnected is handled once, on its node.
func testResume(t *testing.T, su *suite) {
	su.needNodes(t, 2)
	cl := su.cluster(t, 3, config{})
	home, next, third := cl.nodes[0], cl.nodes[1], cl.last()
	c := home.dial(t, dialOpts{name: "ada", proxy: true})
	c.call(t, "join", wszero.Params{"group": "red"})
	cl.waitChange(t, wszero.Joined, "red", c.id)

	streams := []string{home.name + "/red", third.name + "/red", third.name + ">" + c.id}
	var want []string
	tick, note := 0, 0
	rounds := func(n int) {
		t.Helper()
		for range n {
			tick++
			sent(t, "BroadcastTo", home.s.BroadcastTo("red", "tick", wszero.Params{"s": streams[0], "n": tick}))
			sent(t, "BroadcastTo", third.s.BroadcastTo("red", "tick", wszero.Params{"s": streams[1], "n": tick}))
			sent(t, "SendTo", third.s.SendTo(c.id, "direct", wszero.Params{"s": streams[2], "n": tick}))
			want = append(want, msg("tick", streams[0], "n", tick), msg("tick", streams[1], "n", tick), msg("direct", streams[2], "n", tick))
			note++
			if err := c.c.Send("note", wszero.Params{"n": note}); err != nil {
				t.Fatalf("the client's note %d: %v", note, err)
			}
		}
	}
	rounds(5)

	// The balancer sends it to the next node from now on; its connection
	// is cut, and it reconnects there.
	c.proxy.SetBackend(next.ts.Listener.Addr().String())
	c.proxy.Down()
	home.waitAwayOp(t, "away", c.id)
	rounds(10)
	c.proxy.Up()
	sessions := c.sessions.wait(t, "the client's session after it reconnected", func(list []client.Session) bool { return len(list) >= 2 })
	s := sessions[1]
	if !s.Resumed {
		t.Fatalf("the client reconnected to node %s and did not resume its session of node %s: %s", next.name, home.name, s.Why)
	}
	if s.ID != c.id {
		t.Fatalf("the client resumed as %s; it was %s", s.ID, c.id)
	}
	home.waitAwayOp(t, "back", c.id)
	rounds(5)
	sent(t, "BroadcastTo", home.s.BroadcastTo("red", "end", wszero.Params{"s": streams[0]}))
	sent(t, "BroadcastTo", third.s.BroadcastTo("red", "end", wszero.Params{"s": streams[1]}))
	sent(t, "SendTo", third.s.SendTo(c.id, "end", wszero.Params{"s": streams[2]}))
	for _, s := range streams {
		want = append(want, msg("end", s))
	}
	c.expect(t, want...)

	var notes []string
	for i := 1; i <= note; i++ {
		notes = append(notes, fmt.Sprintf("%s %d", c.id, i))
	}
	got := home.notes.wait(t, "node "+home.name+" handling the client's last note", func(list []string) bool {
		return slices.Contains(list, notes[len(notes)-1])
	})
	if !slices.Equal(got, notes) {
		t.Errorf("node %s handled the client's notes:\n\t%s\nwant each once, in order:\n\t%s", home.name, strings.Join(got, "\n\t"), strings.Join(notes, "\n\t"))
	}
	if got := next.notes.snapshot(); len(got) != 0 {
		t.Errorf("node %s, which relays the client, handled notes: %q", next.name, got)
	}
	if home.s.Client(c.id) == nil {
		t.Errorf("node %s, which holds the session, has no client %s", home.name, c.id)
	}
	if other := next.s.Client(c.id); other != nil {
		t.Errorf("node %s, which relays the client, has a client %s of its own", next.name, c.id)
	}
}
