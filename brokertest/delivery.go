package brokertest

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/wszero/wszero"
)

// The subtests of what reaches whom. Every message a subtest sends names
// its stream ("s"): the node that sent it and the route it took (to all,
// to a group, to one client). A stream ends with a marker, sent after the
// rest on the same route: once a client has every marker it should get,
// whatever was sent before them has arrived, and anything more than
// expected is a double.

// sent fails t when err, the error of sending what, is not nil.
func sent(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// testBroadcast: a Broadcast from any node reaches every client of every
// node once, in the order its node sent.
func testBroadcast(t *testing.T, su *suite) {
	cl := su.cluster(t, 3, config{})
	clients := cl.dialEach(t, 2, dialOpts{})
	var want []string
	for _, n := range cl.nodes {
		stream := n.name + "/all"
		for i := 1; i <= 3; i++ {
			sent(t, "Broadcast", n.s.Broadcast("news", wszero.Params{"s": stream, "n": i}))
			want = append(want, msg("news", stream, "n", i))
		}
		sent(t, "Broadcast", n.s.Broadcast("end", wszero.Params{"s": stream}))
		want = append(want, msg("end", stream))
	}
	for _, byNode := range clients {
		for _, c := range byNode {
			c.expect(t, want...)
		}
	}
}

// testBroadcastTo: a BroadcastTo from any node reaches the group's
// members on every node, and no one else; one that leaves gets no more.
func testBroadcastTo(t *testing.T, su *suite) {
	cl := su.cluster(t, 3, config{})
	clients := cl.dialEach(t, 2, dialOpts{})
	var members, others []*conn
	for _, byNode := range clients {
		byNode[0].call(t, "join", wszero.Params{"group": "red"})
		members, others = append(members, byNode[0]), append(others, byNode[1])
	}
	for _, m := range members {
		cl.waitChange(t, wszero.Joined, "red", m.id)
	}
	send := func(round int) (toMembers, toOthers []string) {
		for _, n := range cl.nodes {
			red, all := n.name+"/red", n.name+"/all"
			sent(t, "BroadcastTo", n.s.BroadcastTo("red", "team", wszero.Params{"s": red, "round": round}))
			sent(t, "BroadcastTo", n.s.BroadcastTo("red", "end", wszero.Params{"s": red}))
			sent(t, "Broadcast", n.s.Broadcast("end", wszero.Params{"s": all}))
			toMembers = append(toMembers, msg("team", red, "round", round), msg("end", red), msg("end", all))
			toOthers = append(toOthers, msg("end", all))
		}
		return toMembers, toOthers
	}
	toMembers, toOthers := send(1)
	for _, c := range members {
		c.expect(t, toMembers...)
	}
	for _, c := range others {
		c.expect(t, toOthers...)
	}
	sent(t, "BroadcastTo a group without members", cl.first().s.BroadcastTo("nobody", "team", nil))

	// The last node's member leaves: the group's broadcasts pass it by.
	leaver := members[len(members)-1]
	leaver.call(t, "leave", wszero.Params{"group": "red"})
	cl.waitChange(t, wszero.Left, "red", leaver.id)
	members, others = members[:len(members)-1], append(others, leaver)
	toMembers, toOthers = send(2)
	for _, c := range members {
		c.expect(t, toMembers...)
	}
	for _, c := range others {
		c.expect(t, toOthers...)
	}
}

// testBroadcastOthers: Client.BroadcastOthers reaches every client of
// every node but the one that sent it.
func testBroadcastOthers(t *testing.T, su *suite) {
	cl := su.cluster(t, 3, config{})
	clients := cl.dialEach(t, 2, dialOpts{})
	at := len(cl.nodes) / 2 // the middle node: others on both sides
	n, sender := cl.nodes[at], clients[at][0]
	stream := n.name + "/all"
	sender.call(t, "others", wszero.Params{"s": stream})
	sent(t, "Broadcast", n.s.Broadcast("end", wszero.Params{"s": stream}))
	for _, byNode := range clients {
		for _, c := range byNode {
			if c == sender {
				c.expect(t, msg("end", stream))
			} else {
				c.expect(t, msg("said", stream, "from", sender.id), msg("end", stream))
			}
		}
	}
}

// testBroadcastToOthers: Client.BroadcastToOthers reaches every member of
// the group on every node but the sender, a member or not.
func testBroadcastToOthers(t *testing.T, su *suite) {
	cl := su.cluster(t, 3, config{})
	clients := cl.dialEach(t, 3, dialOpts{})
	inRed := map[*conn]bool{}
	for _, byNode := range clients {
		for _, c := range byNode[:2] {
			c.call(t, "join", wszero.Params{"group": "red"})
			inRed[c] = true
		}
	}
	for c := range inRed {
		cl.waitChange(t, wszero.Joined, "red", c.id)
	}
	at := len(cl.nodes) / 2
	n := cl.nodes[at]
	for _, sender := range []*conn{clients[at][0], clients[at][2]} { // a member, then not
		red, all := n.name+"/red", n.name+"/all"
		sender.call(t, "others", wszero.Params{"group": "red", "s": red})
		sent(t, "BroadcastTo", n.s.BroadcastTo("red", "end", wszero.Params{"s": red}))
		sent(t, "Broadcast", n.s.Broadcast("end", wszero.Params{"s": all}))
		for _, byNode := range clients {
			for _, c := range byNode {
				switch {
				case !inRed[c]:
					c.expect(t, msg("end", all))
				case c == sender:
					c.expect(t, msg("end", red), msg("end", all))
				default:
					c.expect(t, msg("said", red, "from", sender.id), msg("end", red), msg("end", all))
				}
			}
		}
	}
}

// testSendTo: SendTo from any node reaches the client of that ID on any
// node, once and in order; an ID of no client errors, or, when it names
// another node, reaches no one.
func testSendTo(t *testing.T, su *suite) {
	cl := su.cluster(t, 3, config{})
	clients := cl.dialEach(t, 1, dialOpts{})
	for _, n := range cl.nodes {
		for _, byNode := range clients {
			c := byNode[0]
			stream := n.name + ">" + c.id
			for i := 1; i <= 3; i++ {
				sent(t, "SendTo", n.s.SendTo(c.id, "direct", wszero.Params{"s": stream, "n": i}))
			}
			sent(t, "SendTo", n.s.SendTo(c.id, "end", wszero.Params{"s": stream}))
			c.expect(t, msg("direct", stream, "n", 1), msg("direct", stream, "n", 2), msg("direct", stream, "n", 3), msg("end", stream))
		}
	}

	s := cl.first().s
	unknown := []string{"no such client", "gone"}
	if s.Node() != "" {
		unknown = append(unknown, s.Node()+".gone")
	}
	for _, id := range unknown {
		if err := s.SendTo(id, "direct", nil); !errors.Is(err, wszero.ErrClosed) {
			t.Errorf("SendTo(%q), an ID of no client here: got %v, want an error wrapping wszero.ErrClosed", id, err)
		}
	}
	if len(cl.nodes) < 2 {
		return
	}
	// An ID of another node's that no client has: handed to the broker,
	// and dropped there; the node's client gets only what is its own.
	other := cl.last()
	c := clients[len(clients)-1][0]
	stream := cl.first().name + ">" + c.id
	sent(t, "SendTo another node's unknown ID", s.SendTo(other.s.Node()+".gone", "direct", wszero.Params{"s": stream}))
	sent(t, "SendTo", s.SendTo(c.id, "end", wszero.Params{"s": stream}))
	c.expect(t, msg("end", stream))
}

// testClient: Server.Client finds this node's clients, connected or away,
// and none of another node's.
func testClient(t *testing.T, su *suite) {
	cl := su.cluster(t, 2, config{})
	here := cl.first().dial(t, dialOpts{proxy: true})
	s := cl.first().s
	if c := s.Client(here.id); c == nil || c.ID() != here.id {
		t.Fatalf("Client(%q) on its own node: got %v", here.id, c)
	}
	if c := s.Client("no such client"); c != nil {
		t.Errorf(`Client("no such client"): got %s, want nil`, c.ID())
	}

	// An away client is still this node's.
	here.proxy.Down()
	cl.first().waitAwayOp(t, "away", here.id)
	if c := s.Client(here.id); c == nil || !c.Away() {
		t.Fatalf("Client(%q) while its connection is cut: got %v, want the client, Away", here.id, c)
	}
	here.proxy.Up()
	cl.first().waitAwayOp(t, "back", here.id)
	if c := s.Client(here.id); c == nil || c.Away() {
		t.Fatalf("Client(%q) once it resumed: got %v, want the client, not Away", here.id, c)
	}

	t.Run("AnotherNode", func(t *testing.T) {
		su.needNodes(t, 2)
		there := cl.last().dial(t, dialOpts{})
		if c := s.Client(there.id); c != nil {
			t.Errorf("Client(%q), a client of node %s, on node %s: got %s, want nil", there.id, cl.last().name, cl.first().name, c.ID())
		}
		if c := cl.last().s.Client(there.id); c == nil || c.ID() != there.id {
			t.Errorf("Client(%q) on its own node %s: got %v", there.id, cl.last().name, c)
		}
	})
}

// testSendToOne: SendToOne takes the members of every node in turn, each
// once per round, passes by one that left and, while others are
// connected, one that is away; it errors when no node has a member.
func testSendToOne(t *testing.T, su *suite) {
	cl := su.cluster(t, 3, config{})
	sender := cl.first()
	// Members spread over the nodes: one on the first, two on the
	// second, one on the last (on one node, all four there).
	var members []*conn
	for i, per := range []int{1, 2, 1} {
		n := cl.nodes[min(i, len(cl.nodes)-1)]
		for range per {
			c := n.dial(t, dialOpts{proxy: true})
			c.call(t, "join", wszero.Params{"group": "workers"})
			members = append(members, c)
		}
	}
	for _, m := range members {
		cl.waitChange(t, wszero.Joined, "workers", m.id)
	}
	err := sender.s.SendToOne("nobody", "job", nil)
	if !errors.Is(err, wszero.ErrNoMembers) {
		t.Errorf(`SendToOne("nobody"), a group without members: got %v, want an error wrapping wszero.ErrNoMembers`, err)
	}

	const m = 3
	job := 0
	// round sends m jobs for each of members, and checks that each got m,
	// and the others none.
	round := func(what string, members, idle []*conn) {
		t.Helper()
		for range len(members) * m {
			job++
			sent(t, "SendToOne", sender.s.SendToOne("workers", "job", wszero.Params{"s": "one", "n": job}))
		}
		jobs := map[int]string{}
		for _, c := range append(members, idle...) {
			stream := sender.name + ">" + c.id
			sent(t, "SendTo", sender.s.SendTo(c.id, "end", wszero.Params{"s": stream}))
			got := c.until(t, msg("end", stream))
			n := 0
			for _, g := range got {
				if !strings.HasPrefix(g, "job ") {
					continue
				}
				n++
				if other, double := jobs[jobNumber(g)]; double {
					t.Fatalf("%s: job %d reached both %s and %s", what, jobNumber(g), other, c.id)
				}
				jobs[jobNumber(g)] = c.id
			}
			want := m
			if !contains(members, c) {
				want = 0
			}
			if n != want || len(got) != n+1 {
				t.Fatalf("%s: client %s received %q; want %d jobs, then its marker", what, c.id, got, want)
			}
		}
		if len(jobs) != len(members)*m {
			t.Fatalf("%s: %d jobs of %d arrived", what, len(jobs), len(members)*m)
		}
	}
	round(fmt.Sprintf("%d members on %d nodes, %d jobs each", len(members), len(cl.nodes), m), members, nil)

	// One member of the second node leaves: the others share the work.
	leaver := members[1]
	leaver.call(t, "leave", wszero.Params{"group": "workers"})
	cl.waitChange(t, wszero.Left, "workers", leaver.id)
	members = append(members[:1:1], members[2:]...)
	round("a member left", members, []*conn{leaver})

	// The last node's member is away: the connected ones take its turns.
	away := members[len(members)-1]
	away.proxy.Down()
	cl.waitChange(t, wszero.WentAway, "workers", away.id)
	round("a member is away", members[:len(members)-1], nil)
	away.proxy.Up()
	cl.waitChange(t, wszero.CameBack, "workers", away.id)
	round("the member came back", members, []*conn{leaver})

	// All leave: no node has a member.
	for _, c := range members {
		c.call(t, "leave", wszero.Params{"group": "workers"})
		cl.waitChange(t, wszero.Left, "workers", c.id)
	}
	if err := sender.s.SendToOne("workers", "job", nil); !errors.Is(err, wszero.ErrNoMembers) {
		t.Errorf("SendToOne once every member of every node has left: got %v, want an error wrapping wszero.ErrNoMembers", err)
	}
}

// jobNumber returns the n of a job message's String.
func jobNumber(m string) int {
	for _, f := range strings.Fields(m) {
		if v, ok := strings.CutPrefix(f, "n="); ok {
			var n int
			_, _ = fmt.Sscan(v, &n)
			return n
		}
	}
	return 0
}

func contains(cs []*conn, c *conn) bool {
	for _, x := range cs {
		if x == c {
			return true
		}
	}
	return false
}
