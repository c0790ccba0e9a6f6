package brokertest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wszero/wszero"
	"github.com/wszero/wszero/client"
	"github.com/wszero/wszero/internal/cutproxy"
)

// The suite's clusters: wszero servers (nodes), each with a broker of
// newBroker's (or none), served by an httptest server on 127.0.0.1, with
// the handlers the subtests call; and Go clients that record what they
// receive.

// timeout bounds every wait of the suite: for a message, a presence
// change, a connection. A broker slower than this fails.
const timeout = 10 * time.Second

// presenceInterval is the presence interval of the suite's servers
// (wszero.WithPresenceInterval), short to keep the subtests about silent
// nodes fast.
const presenceInterval = 50 * time.Millisecond

// suite is one Run: how to make a node's broker.
type suite struct {
	newBroker func(t *testing.T) wszero.Broker
}

// clustered reports whether the suite checks a broker, not the default.
func (su *suite) clustered() bool { return su.newBroker != nil }

// needNodes skips t, saying why, when the suite runs on one node and t
// needs n.
func (su *suite) needNodes(t *testing.T, n int) {
	t.Helper()
	if !su.clustered() {
		t.Skipf("runs on %d nodes: newBroker is nil, and the in-process default broker serves one node only (pass Run a broker's constructor to check it)", n)
	}
}

// config is how a cluster's nodes are made.
type config struct {
	opts     []wszero.Option // after the suite's own
	silenced bool            // the nodes' brokers can be closed underneath them (node.silence)
}

// cluster is the nodes of one subtest.
type cluster struct {
	t     *testing.T
	su    *suite
	cfg   config
	nodes []*node
}

// cluster starts n nodes (one when the suite has no broker), each
// knowing every other: they have said hi to each other, so that what
// one node's members do reaches the others' Presence.
func (su *suite) cluster(t *testing.T, n int, cfg config) *cluster {
	t.Helper()
	if !su.clustered() {
		n = 1
	}
	cl := &cluster{t: t, su: su, cfg: cfg}
	for range n {
		cl.addNode()
	}
	return cl
}

// first and last are the cluster's first and last nodes: the same one
// when the suite runs on one node.
func (cl *cluster) first() *node { return cl.nodes[0] }
func (cl *cluster) last() *node  { return cl.nodes[len(cl.nodes)-1] }

// node is one server of a cluster.
type node struct {
	cl     *cluster
	name   string // "A", "B", …: for messages
	s      *wszero.Server
	ts     *httptest.Server
	broker *silencer // nil unless config.silenced

	changes  *events[wszero.PresenceChange] // OnPresence's, every group's
	groupOps *events[string]                // "join <group> <client>", "leave <group> <client>"
	notes    *events[string]                // "<client> <n>": the "note" handler's
	gone     *events[string]                // the "disconnect" handler's client IDs
	awayOps  *events[string]                // "away <client>", "back <client>": client_away's and client_back's
	down     bool                           // shut down
}

// identity is what the suite's WithAuthenticate returns for a client that
// gives a name (/ws?name=…).
type identity struct {
	Name string `json:"name"`
	Seat int    `json:"seat"`
}

// addNode starts a node, joined to the cluster.
func (cl *cluster) addNode() *node {
	t := cl.t
	t.Helper()
	n := &node{
		cl:       cl,
		name:     string(rune('A' + len(cl.nodes))),
		changes:  newEvents[wszero.PresenceChange](),
		groupOps: newEvents[string](),
		notes:    newEvents[string](),
		gone:     newEvents[string](),
		awayOps:  newEvents[string](),
	}
	opts := []wszero.Option{
		wszero.WithLogger(logger()),
		wszero.WithPresenceInterval(presenceInterval),
		wszero.WithAuthenticate(func(r *http.Request) (any, error) {
			name := r.URL.Query().Get("name")
			if name == "" {
				return nil, nil
			}
			return identity{Name: name, Seat: len(name)}, nil
		}),
	}
	if cl.su.clustered() {
		b := cl.su.newBroker(t)
		if b == nil {
			t.Fatal("brokertest: newBroker returned nil; return a new broker, joined to the cluster of the others")
		}
		if cl.cfg.silenced {
			n.broker = &silencer{Broker: b}
			b = n.broker
		}
		opts = append(opts, wszero.WithBroker(b))
	}
	n.s = wszero.New(append(opts, cl.cfg.opts...)...)
	n.handle()
	n.ts = httptest.NewServer(n.s)
	t.Cleanup(func() {
		n.shutdown()
		n.ts.Close()
	})
	cl.nodes = append(cl.nodes, n)
	cl.waitFormed()
	return n
}

// handle registers the handlers the subtests use.
func (n *node) handle() {
	s := n.s
	s.On("hello", func(c *wszero.Client) string { return c.ID() })
	s.On("join", func(c *wszero.Client, p struct{ Group string }) error { return c.AddToGroup(p.Group) })
	s.On("joinmany", func(c *wszero.Client, p struct {
		Prefix string
		N      int
	}) error {
		for i := range p.N {
			if err := c.AddToGroup(fmt.Sprintf("%s%d", p.Prefix, i)); err != nil {
				return err
			}
		}
		return nil
	})
	s.On("leave", func(c *wszero.Client, p struct{ Group string }) { c.RemoveFromGroup(p.Group) })
	s.On("others", func(c *wszero.Client, p struct {
		Group string `json:"group,omitempty"` // none: to everyone
		S     string
	}) error {
		params := wszero.Params{"s": p.S, "from": c.ID()}
		if p.Group == "" {
			return c.BroadcastOthers("said", params)
		}
		return c.BroadcastToOthers(p.Group, "said", params)
	})
	s.On("note", func(c *wszero.Client, p struct{ N int }) { n.notes.add(fmt.Sprintf("%s %d", c.ID(), p.N)) })
	s.On("group_join", func(c *wszero.Client, p struct{ Group string }) {
		n.groupOps.add("join " + p.Group + " " + c.ID())
	})
	s.On("group_leave", func(c *wszero.Client, p struct{ Group string }) {
		n.groupOps.add("leave " + p.Group + " " + c.ID())
	})
	s.On("disconnect", func(c *wszero.Client) { n.gone.add(c.ID()) })
	s.On("client_away", func(c *wszero.Client) { n.awayOps.add("away " + c.ID()) })
	s.On("client_back", func(c *wszero.Client) { n.awayOps.add("back " + c.ID()) })
	s.OnPresence(n.changes.add)
}

// shutdown shuts the node down, once.
func (n *node) shutdown() {
	t := n.cl.t
	t.Helper()
	if n.down {
		return
	}
	n.down = true
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := n.s.Shutdown(ctx); err != nil && (n.broker == nil || !n.broker.isSilenced()) {
		t.Errorf("node %s: Shutdown: %v", n.name, err)
	}
}

// waitFormed waits until the newest node and every other have heard of
// each other. A probe client on each joins a group of its own, which
// every node's OnPresence must report; then it leaves.
func (cl *cluster) waitFormed() {
	t := cl.t
	t.Helper()
	if len(cl.nodes) < 2 {
		return
	}
	newest := cl.last()
	group := "formed-" + newest.name
	var probes []*conn
	for _, n := range cl.nodes {
		p := n.dial(t, dialOpts{})
		p.call(t, "join", wszero.Params{"group": group})
		probes = append(probes, p)
	}
	for _, p := range probes {
		cl.waitChange(t, wszero.Joined, group, p.id)
	}
	for _, p := range probes {
		p.close(t)
		cl.waitChange(t, wszero.Left, group, p.id)
	}
}

// waitChange waits until every running node's OnPresence has reported
// a change of kind for the client id in group.
func (cl *cluster) waitChange(t *testing.T, kind wszero.PresenceKind, group, id string) {
	t.Helper()
	for _, n := range cl.nodes {
		if !n.down {
			n.waitChange(t, kind, group, id)
		}
	}
}

// waitChange waits until n's OnPresence has reported a change of kind for
// the client id in group, and returns it.
func (n *node) waitChange(t *testing.T, kind wszero.PresenceKind, group, id string) wszero.PresenceChange {
	t.Helper()
	what := fmt.Sprintf("node %s's OnPresence reporting %s %s %s", n.name, id, kind, group)
	list := n.changes.wait(t, what, func(list []wszero.PresenceChange) bool {
		return slices.IndexFunc(list, isChange(kind, group, id)) >= 0
	})
	return list[slices.IndexFunc(list, isChange(kind, group, id))]
}

func isChange(kind wszero.PresenceKind, group, id string) func(wszero.PresenceChange) bool {
	return func(ch wszero.PresenceChange) bool {
		return ch.Kind == kind && ch.Group == group && ch.Member.ID == id
	}
}

// changesOf returns what n's OnPresence reported about client id in
// group, as "joined", "away", "back", "left".
func (n *node) changesOf(group, id string) []string {
	var kinds []string
	for _, ch := range n.changes.snapshot() {
		if ch.Group == group && ch.Member.ID == id {
			kinds = append(kinds, ch.Kind.String())
		}
	}
	return kinds
}

// waitAwayOp waits until n's client_away or client_back handler ("away"
// or "back") has run for the client id.
func (n *node) waitAwayOp(t *testing.T, op, id string) {
	t.Helper()
	n.awayOps.wait(t, fmt.Sprintf("node %s's client_%s handler for %s", n.name, op, id), func(list []string) bool {
		return slices.Contains(list, op+" "+id)
	})
}

// silence closes the node's broker underneath its server, which goes on
// as if nothing happened: to the other nodes it has gone silent, as a
// node cut off by a partition, or stopped by a crash, is.
func (n *node) silence(t *testing.T) {
	t.Helper()
	if n.broker == nil {
		t.Fatal("brokertest: silence needs a cluster made with config.silenced")
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := n.broker.silence(ctx); err != nil {
		t.Logf("node %s: closing its broker: %v", n.name, err)
	}
}

// silencer is a node's broker that the suite can close underneath its
// server: from then on it carries nothing, and the server's own Close
// does nothing more.
type silencer struct {
	wszero.Broker
	mu     sync.Mutex
	closed bool
}

// errSilenced is what a silenced broker's Publish and Signal return.
var errSilenced = fmt.Errorf("brokertest: the broker was closed underneath its server, to make the node silent")

// silence closes the broker underneath, once.
func (b *silencer) silence(ctx context.Context) error {
	b.mu.Lock()
	already := b.closed
	b.closed = true
	b.mu.Unlock()
	if already {
		return nil
	}
	return b.Broker.Close(ctx)
}

func (b *silencer) isSilenced() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

func (b *silencer) Publish(to wszero.Target, frame []byte) error {
	if b.isSilenced() {
		return errSilenced
	}
	return b.Broker.Publish(to, frame)
}

func (b *silencer) Signal(node string, msg []byte) error {
	if b.isSilenced() {
		return errSilenced
	}
	return b.Broker.Signal(node, msg)
}

func (b *silencer) GroupChanged(group string) {
	if !b.isSilenced() {
		b.Broker.GroupChanged(group)
	}
}

// Close closes the broker, unless silence has: the server's Close, at its
// Shutdown, never reaches it twice.
func (b *silencer) Close(ctx context.Context) error { return b.silence(ctx) }

// dialOpts says how a client connects.
type dialOpts struct {
	name  string // its identity's name: /ws?name=…
	proxy bool   // through a cutproxy, which can cut its connection; it reconnects
}

// conn is a Go client of a node.
type conn struct {
	name     string
	id       string
	c        *client.Conn
	proxy    *cutproxy.Proxy // when dialled through one
	inbox    *events[message]
	sessions *events[client.Session]
	closed   bool
}

// dial connects a client to n and waits until n has it (a call has
// been answered).
func (n *node) dial(t *testing.T, o dialOpts) *conn {
	t.Helper()
	addr := n.ts.Listener.Addr().String()
	c := &conn{name: o.name, inbox: newEvents[message](), sessions: newEvents[client.Session]()}
	opts := []client.Option{
		client.WithLogger(logger()),
		client.WithUnhandled(func(op string, p wszero.Params) { c.inbox.add(message{op, p}) }),
		client.WithOnSession(c.sessions.add),
	}
	if o.proxy {
		c.proxy = cutproxy.Start(t, addr)
		addr = c.proxy.Addr()
		opts = append(opts, client.WithReconnect(client.Reconnect{MinDelay: 10 * time.Millisecond, MaxDelay: 50 * time.Millisecond}))
	}
	url := "ws://" + addr + "/ws"
	if o.name != "" {
		url += "?name=" + o.name
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cc, err := client.Dial(ctx, url, opts...)
	if err != nil {
		t.Fatalf("a client could not connect to node %s: %v", n.name, err)
	}
	c.c = cc
	t.Cleanup(func() { c.close(t) })
	var id string
	if err := cc.Call(ctx, "hello", nil, &id); err != nil {
		t.Fatalf("node %s did not answer a new client: %v", n.name, err)
	}
	c.id = id
	return c
}

// dialEach connects per clients to each node, named after the node
// ("A0", "A1", …), and returns them by node.
func (cl *cluster) dialEach(t *testing.T, per int, o dialOpts) [][]*conn {
	t.Helper()
	all := make([][]*conn, len(cl.nodes))
	for i, n := range cl.nodes {
		for j := range per {
			o := o
			o.name = fmt.Sprintf("%s%d", n.name, j)
			all[i] = append(all[i], n.dial(t, o))
		}
	}
	return all
}

// call calls op on the client's node, failing t if it fails.
func (c *conn) call(t *testing.T, op string, params any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := c.c.Call(ctx, op, params, nil); err != nil {
		t.Fatalf("client %s: calling %q: %v", c.id, op, err)
	}
}

// close closes the client, once.
func (c *conn) close(t *testing.T) {
	if c.closed {
		return
	}
	c.closed = true
	_ = c.c.Close()
}

// message is one message a client received.
type message struct {
	op string
	p  wszero.Params
}

// String returns the message as "op k=v k=v", its keys sorted.
func (m message) String() string {
	keys := make([]string, 0, len(m.p))
	for k := range m.p {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	b.WriteString(m.op)
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%v", k, m.p[k])
	}
	return b.String()
}

// msg returns the String of the message {"op": op, "s": stream, …kv}:
// what the subtests send, and expect.
func msg(op, stream string, kv ...any) string {
	p := wszero.Params{"s": stream}
	for i := 0; i+1 < len(kv); i += 2 {
		p[kv[i].(string)] = kv[i+1]
	}
	data, _ := json.Marshal(p) // as the client decodes it: numbers are float64
	var decoded wszero.Params
	_ = json.Unmarshal(data, &decoded)
	return message{op, decoded}.String()
}

// until waits until every message of markers has arrived, and returns,
// and forgets, every message received so far.
func (c *conn) until(t *testing.T, markers ...string) []string {
	t.Helper()
	what := fmt.Sprintf("client %s receiving %q", c.id, markers)
	var got []string
	c.inbox.wait(t, what, func(list []message) bool {
		got = got[:0]
		for _, m := range list {
			got = append(got, m.String())
		}
		return containsAll(got, markers)
	})
	c.inbox.take(len(got))
	return got
}

// expect waits until what it wants has arrived, and fails t unless that
// is exactly what arrived: each message once, nothing else, and those of
// one stream (their "s") in the order of want. The last message of each
// stream in want is its marker, sent after the others: when it is there,
// whatever was sent before it on its stream has arrived.
func (c *conn) expect(t *testing.T, want ...string) {
	t.Helper()
	var markers []string
	last := map[string]string{}
	for _, w := range want {
		last[streamOf(w)] = w
	}
	for _, m := range last {
		markers = append(markers, m)
	}
	got := c.until(t, markers...)
	if !sameMultiset(got, want) {
		t.Fatalf("client %s (%s) received, up to its markers:\n\t%s\nwant, each once:\n\t%s", c.id, c.name, strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
	for s := range last {
		if g, w := inStream(got, s), inStream(want, s); !slices.Equal(g, w) {
			t.Fatalf("client %s (%s) received stream %s out of order:\n\t%s\nwant:\n\t%s", c.id, c.name, s, strings.Join(g, "\n\t"), strings.Join(w, "\n\t"))
		}
	}
}

// streamOf returns the stream of a message's String: its "s".
func streamOf(m string) string {
	for _, f := range strings.Fields(m) {
		if s, ok := strings.CutPrefix(f, "s="); ok {
			return s
		}
	}
	return ""
}

func inStream(ms []string, s string) []string {
	var out []string
	for _, m := range ms {
		if streamOf(m) == s {
			out = append(out, m)
		}
	}
	return out
}

func containsAll(got, want []string) bool {
	count := map[string]int{}
	for _, g := range got {
		count[g]++
	}
	for _, w := range want {
		if count[w] == 0 {
			return false
		}
		count[w]--
	}
	return true
}

func sameMultiset(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// events records what arrives from other goroutines, for the test's
// goroutine to wait for.
type events[T any] struct {
	mu   sync.Mutex
	list []T
	more chan struct{} // closed, and replaced, by each add
}

func newEvents[T any]() *events[T] { return &events[T]{more: make(chan struct{})} }

func (e *events[T]) add(v T) {
	e.mu.Lock()
	e.list = append(e.list, v)
	close(e.more)
	e.more = make(chan struct{})
	e.mu.Unlock()
}

func (e *events[T]) snapshot() []T {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.list)
}

// take forgets the first n events.
func (e *events[T]) take(n int) {
	e.mu.Lock()
	e.list = slices.Delete(e.list, 0, n)
	e.mu.Unlock()
}

// wait waits until done, given what has arrived, reports true, and
// returns what has; it fails t, saying what, after timeout.
func (e *events[T]) wait(t *testing.T, what string, done func([]T) bool) []T {
	t.Helper()
	return e.waitFor(t, what, timeout, done)
}

// waitFor is wait with another timeout.
func (e *events[T]) waitFor(t *testing.T, what string, timeout time.Duration, done func([]T) bool) []T {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		e.mu.Lock()
		list, more := slices.Clone(e.list), e.more
		e.mu.Unlock()
		if done(list) {
			return list
		}
		select {
		case <-more:
		case <-deadline.C:
			shown, more := list, ""
			if len(list) > 10 {
				shown, more = list[len(list)-10:], fmt.Sprintf("(%d more before) ", len(list)-10)
			}
			t.Fatalf("timed out after %v waiting for %s; what arrived: %s%v", timeout, what, more, shown)
		}
	}
}

// logger is silent unless the tests run with -v.
func logger() *slog.Logger {
	if testing.Verbose() {
		return slog.Default()
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}
