package brokertest

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wszero/wszero"
)

// The subtests of who is in which group, on every node: Presence,
// CountMembers, OnPresence and the group_join and group_leave ops.

// joined is a member as the suite made it: its client, its node, and
// the moments before and after its join.
type joined struct {
	c             *conn
	n             *node
	before, after time.Time
}

// nextMillisecond waits until the clock has moved on to another
// millisecond, at most one: Member.Joined is to the millisecond, and
// joins a millisecond apart have an order to check.
func nextMillisecond() {
	now := time.Now().UnixMilli()
	for time.Now().UnixMilli() == now {
		runtime.Gosched()
	}
}

// join makes c, a client of n, join group and returns the member it is.
func join(t *testing.T, n *node, c *conn, group string) joined {
	t.Helper()
	nextMillisecond()
	j := joined{c: c, n: n, before: time.Now()}
	c.call(t, "join", wszero.Params{"group": group})
	j.after = time.Now()
	return j
}

// presence returns n's Presence of group, failing t on an error.
func presence(t *testing.T, n *node, group string) []wszero.Member {
	t.Helper()
	return ask(t, n, "Presence", group, n.s.Presence)
}

// countMembers returns n's CountMembers of group, failing t on an error.
func countMembers(t *testing.T, n *node, group string) int {
	t.Helper()
	return ask(t, n, "CountMembers", group, n.s.CountMembers)
}

// ask returns what method, n's Presence or CountMembers, says of group,
// failing t on an error.
func ask[T any](t *testing.T, n *node, name, group string, method func(context.Context, string) (T, error)) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	v, err := method(ctx, group)
	if err != nil {
		t.Fatalf("node %s: %s(%q): %v", n.name, name, group, err)
	}
	return v
}

// identityJSON is the JSON of the identity the suite's WithAuthenticate
// gives a client named name.
func identityJSON(name string) string {
	data, _ := json.Marshal(identity{Name: name, Seat: len(name)})
	return string(data)
}

// sameJSON reports whether a and b are the same JSON value.
func sameJSON(a, b []byte) bool {
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	ja, _ := json.Marshal(va)
	jb, _ := json.Marshal(vb)
	return string(ja) == string(jb)
}

func describe(ms []wszero.Member) string {
	var b strings.Builder
	for _, m := range ms {
		fmt.Fprintf(&b, "\n\t%s node=%q joined=%s away=%v identity=%s", m.ID, m.Node, m.Joined.Format("15:04:05.000"), m.Away, m.Identity)
	}
	return b.String()
}

// checkPresence fails t unless viewer's Presence of group lists exactly
// want: the viewer's own members first, then each other node's together,
// each node's in the order they joined, each with its ID, node, time of
// joining, identity and whether it is away (the members in away).
func checkPresence(t *testing.T, viewer *node, group string, want []joined, away map[*conn]bool) []wszero.Member {
	t.Helper()
	got := presence(t, viewer, group)
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("node %s: Presence(%q) %s; it lists:%s", viewer.name, group, fmt.Sprintf(format, args...), describe(got))
	}
	if len(got) != len(want) {
		fail("has %d members, want %d", len(got), len(want))
	}
	byID := map[string]joined{}
	for _, j := range want {
		byID[j.c.id] = j
	}
	var nodesSeen []*node
	for i, m := range got {
		j, ok := byID[m.ID]
		if !ok {
			fail("lists %s, which is not a member", m.ID)
		}
		delete(byID, m.ID)
		switch {
		case i == 0 && j.n != viewer && slices.ContainsFunc(want, func(j joined) bool { return j.n == viewer }):
			fail("does not list this node's members first")
		case len(nodesSeen) > 0 && nodesSeen[len(nodesSeen)-1] == j.n:
		case slices.Contains(nodesSeen, j.n):
			fail("does not list node %s's members together", j.n.name)
		default:
			nodesSeen = append(nodesSeen, j.n)
		}
		if i > 0 && got[i-1].Node == m.Node && m.Joined.Before(got[i-1].Joined) {
			fail("lists %s, who joined at %s, after %s, who joined later", m.ID, m.Joined.Format("15:04:05.000"), got[i-1].ID)
		} else if i > 0 && got[i-1].Node == m.Node && slices.IndexFunc(want, func(w joined) bool { return w.c.id == m.ID }) < slices.IndexFunc(want, func(w joined) bool { return w.c.id == got[i-1].ID }) {
			fail("lists %s before %s, who joined first", got[i-1].ID, m.ID)
		}
		if m.Node != j.n.s.Node() {
			fail("gives %s the node %q; it is on node %s, %q", m.ID, m.Node, j.n.name, j.n.s.Node())
		}
		if m.Joined.IsZero() || m.Joined.Before(j.before.Truncate(time.Millisecond)) || m.Joined.After(j.after) {
			fail("gives %s the time of joining %s; it joined between %s and %s", m.ID, m.Joined.Format("15:04:05.000"), j.before.Format("15:04:05.000"), j.after.Format("15:04:05.000"))
		}
		if m.Away != away[j.c] {
			fail("says %s is away: %v; want %v", m.ID, m.Away, away[j.c])
		}
		if !sameJSON(m.Identity, []byte(identityJSON(j.c.name))) {
			fail("gives %s the identity %s; want %s", m.ID, m.Identity, identityJSON(j.c.name))
		}
	}
	return got
}

// testPresence: every node's Presence lists the members of every node,
// with their IDs, nodes, times of joining (the same everywhere), and
// identities; one that leaves or disconnects is no longer listed.
func testPresence(t *testing.T, su *suite) {
	cl := su.cluster(t, 3, config{})
	clients := cl.dialEach(t, 2, dialOpts{})
	// Each node's second client joins first: the order of joining is
	// not the order of connecting.
	var members []joined
	for i, byNode := range clients {
		for _, c := range []*conn{byNode[1], byNode[0]} {
			members = append(members, join(t, cl.nodes[i], c, "table"))
		}
	}
	for _, j := range members {
		cl.waitChange(t, wszero.Joined, "table", j.c.id)
	}
	var first []wszero.Member
	for _, n := range cl.nodes {
		got := checkPresence(t, n, "table", members, nil)
		for _, m := range got {
			for _, f := range first {
				if f.ID == m.ID && !f.Joined.Equal(m.Joined) {
					t.Fatalf("%s joined at %s on node %s's Presence, at %s on node %s's", m.ID, f.Joined.Format("15:04:05.000"), cl.first().name, m.Joined.Format("15:04:05.000"), n.name)
				}
			}
		}
		if first == nil {
			first = got
		}
		if none := presence(t, n, "nobody"); len(none) != 0 {
			t.Fatalf("node %s: Presence of a group without members:%s", n.name, describe(none))
		}
	}

	// The last node's members go: one leaves, one disconnects.
	last := len(clients) - 1
	clients[last][1].call(t, "leave", wszero.Params{"group": "table"})
	clients[last][0].close(t)
	for _, c := range clients[last] {
		cl.waitChange(t, wszero.Left, "table", c.id)
	}
	members = slices.DeleteFunc(members, func(j joined) bool { return j.n == cl.last() })
	for _, n := range cl.nodes {
		checkPresence(t, n, "table", members, nil)
	}
}

// testPresenceAway: a member whose connection is cut (not closed) is
// listed away by every node while it may resume, and not once it has.
func testPresenceAway(t *testing.T, su *suite) {
	cl := su.cluster(t, 2, config{})
	x := cl.last().dial(t, dialOpts{name: "ada", proxy: true})
	y := cl.last().dial(t, dialOpts{name: "bo"})
	members := []joined{join(t, cl.last(), x, "table"), join(t, cl.last(), y, "table")}
	for _, j := range members {
		cl.waitChange(t, wszero.Joined, "table", j.c.id)
	}
	x.proxy.Down()
	cl.waitChange(t, wszero.WentAway, "table", x.id)
	for _, n := range cl.nodes {
		checkPresence(t, n, "table", members, map[*conn]bool{x: true})
		if got := countMembers(t, n, "table"); got != 2 {
			t.Errorf("node %s: CountMembers counts %d members while one is away; want 2: an away member is a member", n.name, got)
		}
	}
	x.proxy.Up()
	cl.waitChange(t, wszero.CameBack, "table", x.id)
	for _, n := range cl.nodes {
		checkPresence(t, n, "table", members, nil)
	}
}

// testCountMembers: every node's CountMembers counts what its Presence
// lists, for groups on every node, on some, on none; and after a leave
// and a disconnect.
func testCountMembers(t *testing.T, su *suite) {
	cl := su.cluster(t, 3, config{})
	clients := cl.dialEach(t, 2, dialOpts{})
	in := map[string]map[*conn]bool{"everyone": {}, "first": {}, "last": {}, "one": {}, "nobody": {}}
	add := func(c *conn, group string) {
		t.Helper()
		c.call(t, "join", wszero.Params{"group": group})
		cl.waitChange(t, wszero.Joined, group, c.id)
		in[group][c] = true
	}
	for i, byNode := range clients {
		for _, c := range byNode {
			add(c, "everyone")
			if i == 0 {
				add(c, "first")
			}
			if i == len(clients)-1 {
				add(c, "last")
			}
		}
	}
	add(clients[len(clients)/2][1], "one")
	check := func(when string) {
		t.Helper()
		for _, n := range cl.nodes {
			for group, members := range in {
				count, listed := countMembers(t, n, group), len(presence(t, n, group))
				if count != listed || count != len(members) {
					t.Errorf("%s: node %s: CountMembers(%q) = %d, Presence lists %d; want %d", when, n.name, group, count, listed, len(members))
				}
			}
		}
	}
	check("all joined")
	leaver, quitter := clients[0][0], clients[len(clients)-1][1]
	leaver.call(t, "leave", wszero.Params{"group": "everyone"})
	cl.waitChange(t, wszero.Left, "everyone", leaver.id)
	delete(in["everyone"], leaver)
	quitter.close(t)
	for group, members := range in {
		if members[quitter] {
			cl.waitChange(t, wszero.Left, group, quitter.id)
			delete(members, quitter)
		}
	}
	check("one left a group, one disconnected")
}

// testOnPresence: one node's OnPresence sees a member of another node
// join, go away, come back and leave, each once and in order, with the
// member as Presence lists it, and a Client only for its own.
func testOnPresence(t *testing.T, su *suite) {
	cl := su.cluster(t, 2, config{})
	watcher, home := cl.first(), cl.last()
	x := home.dial(t, dialOpts{name: "ada", proxy: true})
	check := func(kind wszero.PresenceKind, away bool) {
		t.Helper()
		ch := watcher.waitChange(t, kind, "room", x.id)
		m := ch.Member
		switch {
		case m.Node != home.s.Node():
			t.Fatalf("OnPresence %s: the member's node is %q, want %q", kind, m.Node, home.s.Node())
		case m.Joined.IsZero():
			t.Fatalf("OnPresence %s: the member has no time of joining", kind)
		case m.Away != away:
			t.Fatalf("OnPresence %s: the member is away: %v, want %v", kind, m.Away, away)
		case !sameJSON(m.Identity, []byte(identityJSON(x.name))):
			t.Fatalf("OnPresence %s: the member's identity is %s, want %s", kind, m.Identity, identityJSON(x.name))
		case watcher == home && (ch.Client == nil || ch.Client.ID() != x.id):
			t.Fatalf("OnPresence %s of this node's client: Client is %v, want the client", kind, ch.Client)
		case watcher != home && ch.Client != nil:
			t.Fatalf("OnPresence %s of another node's client: Client is %s, want nil", kind, ch.Client.ID())
		}
	}
	x.call(t, "join", wszero.Params{"group": "room"})
	check(wszero.Joined, false)
	x.proxy.Down()
	check(wszero.WentAway, true)
	x.proxy.Up()
	check(wszero.CameBack, false)
	x.call(t, "leave", wszero.Params{"group": "room"})
	check(wszero.Left, false)

	// The marker: another member's join, after everything above.
	y := home.dial(t, dialOpts{})
	y.call(t, "join", wszero.Params{"group": "room"})
	watcher.waitChange(t, wszero.Joined, "room", y.id)
	if got, want := watcher.changesOf("room", x.id), []string{"joined", "away", "back", "left"}; !slices.Equal(got, want) {
		t.Fatalf("node %s's OnPresence reported %v for a member of node %s; want %v, each once", watcher.name, got, home.name, want)
	}
}

// testGroupOps: the "group_join" and "group_leave" handlers of a node run
// for its own clients' joining and leaving (a disconnect leaves every
// group), with the group's name, once each, and never for another node's
// clients.
func testGroupOps(t *testing.T, su *suite) {
	cl := su.cluster(t, 2, config{})
	first, last := cl.first(), cl.last()
	type opOn struct {
		n  *node
		op string // as node.groupOps has it
	}
	var want []opOn
	a, b := first.dial(t, dialOpts{}), last.dial(t, dialOpts{})
	op := func(n *node, c *conn, what, group string, raises bool) {
		t.Helper()
		c.call(t, what, wszero.Params{"group": group})
		if raises {
			want = append(want, opOn{n, what + " " + group + " " + c.id})
		}
	}
	op(first, a, "join", "g", true)
	op(last, b, "join", "g", true)
	op(first, a, "join", "g", false) // already in
	cl.waitChange(t, wszero.Joined, "g", b.id)
	op(first, a, "leave", "g", true)
	op(first, a, "leave", "g", false) // not in
	b.close(t)                        // a disconnect leaves every group
	want = append(want, opOn{last, "leave g " + b.id})
	cl.waitChange(t, wszero.Left, "g", b.id)

	// The markers: a join on each node, after everything above.
	c := last.dial(t, dialOpts{})
	op(first, a, "join", "end", true)
	op(last, c, "join", "end", true)
	nodes := []*node{first, last}
	if first == last {
		nodes = nodes[:1]
	}
	for _, n := range nodes {
		var w []string
		for _, o := range want {
			if o.n == n {
				w = append(w, o.op)
			}
		}
		got := n.groupOps.wait(t, "node "+n.name+"'s group_join for its marker", func(list []string) bool {
			return slices.Contains(list, w[len(w)-1])
		})
		got = slices.DeleteFunc(got, func(op string) bool { return strings.Contains(op, " formed-") })
		if !slices.Equal(got, w) {
			t.Errorf("node %s's group_join and group_leave handlers ran for:\n\t%s\nwant:\n\t%s", n.name, strings.Join(got, "\n\t"), strings.Join(w, "\n\t"))
		}
	}
}
