package wszero

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wszero/wszero/internal/binding"
	"github.com/wszero/wszero/internal/protocol"
)

// Every node of a cluster tells the others, as signals through the
// broker, who joins and leaves its groups and which of its clients are
// away, and each node keeps what the others told it: Presence lists a
// group's members on every node without asking the network, CountMembers
// counts them, and SendToOne chooses among them.
//
// Each node numbers the presence signals it sends to all. Another node
// that finds a number missing (the broker lost a signal: brokers are at
// most once) asks it for everything again (a snapshot), and so does a node
// that hears of a node for the first time. Each node says "hi" every
// presence interval with its last number, so that a lost last signal is
// noticed too; a node not heard for three intervals is gone, and its
// members with it. Its "bye", at Shutdown, says so at once.

// Member is one member of a group, on any node of the cluster, as Presence
// lists it.
type Member struct {
	// ID is the client's ID (Client.ID), which SendTo reaches.
	ID string `json:"id"`
	// Node is the ID of the node the client is connected to
	// (Server.Node), "" on a server without a broker.
	Node string `json:"node,omitempty"`
	// Joined is when the client joined the group, to the millisecond.
	Joined time.Time `json:"joined"`
	// Away is true while the client's connection has dropped and it may
	// resume (see Client.Away).
	Away bool `json:"away,omitempty"`
	// Identity is what WithAuthenticate's function returned for the
	// client, as JSON (json.Unmarshal it into your own type), or nil
	// when it returned nil, or an identity that cannot be made JSON or
	// takes more than 4 KiB.
	Identity json.RawMessage `json:"identity,omitempty"`
}

// PresenceChange is what changed about one member of a group: it
// joined, left, went away or came back. OnPresence's functions receive
// them.
type PresenceChange struct {
	Kind   PresenceKind
	Group  string
	Member Member
	// Client is the member when it is a client of this server, else nil.
	Client *Client
}

// PresenceKind says what a PresenceChange is.
type PresenceKind int

// The kinds of PresenceChange.
const (
	Joined   PresenceKind = iota + 1 // Joined: the member joined the group
	Left                             // Left: it left the group, or its node is gone
	WentAway                         // WentAway: its connection dropped; it may resume
	CameBack                         // CameBack: it resumed
)

// awayKind is the change of a member that is now away, or not.
func awayKind(away bool) PresenceKind {
	if away {
		return WentAway
	}
	return CameBack
}

// String returns "joined", "left", "away" or "back".
func (k PresenceKind) String() string {
	switch k {
	case Joined:
		return "joined"
	case Left:
		return "left"
	case WentAway:
		return "away"
	case CameBack:
		return "back"
	}
	return fmt.Sprintf("PresenceKind(%d)", int(k))
}

// ErrPresenceIncomplete is wrapped by the error of Presence and
// CountMembers when what some node told is missing: the node has just
// been heard of, or a signal from it was lost, and its snapshot has not
// arrived before the context ended. What is known is returned with it.
var ErrPresenceIncomplete = errors.New("wszero: the presence of some nodes is not known yet")

// DefaultPresenceInterval is how often a node of a cluster tells the
// others it is there (WithPresenceInterval).
const DefaultPresenceInterval = time.Second

// presenceMisses is how many intervals a node may be silent before the
// others count it gone.
const presenceMisses = 3

// presenceMessage is one presence signal, as JSON.
type presenceMessage struct {
	Kind string `json:"k"`           // one of the msg… kinds
	Seq  uint64 `json:"s,omitempty"` // the sender's number: of this signal, or its last (hi, snapshot)

	Client   string          `json:"c,omitempty"`
	Group    string          `json:"g,omitempty"`
	Joined   int64           `json:"at,omitempty"` // Unix milliseconds
	Identity json.RawMessage `json:"id,omitempty"`
	Away     bool            `json:"away,omitempty"`

	Every int64 `json:"every,omitempty"` // hi: the sender's interval, in milliseconds
	New   bool  `json:"new,omitempty"`   // hi: the sender has just started; say hi back

	Part    int              `json:"part,omitempty"` // snapshot: its parts are numbered from 0
	Last    bool             `json:"last,omitempty"` // snapshot: its last part
	Members []snapshotMember `json:"m,omitempty"`    // snapshot
}

// snapshotMember is one client of a snapshot, with its groups.
type snapshotMember struct {
	Client   string           `json:"c"`
	Identity json.RawMessage  `json:"id,omitempty"`
	Away     bool             `json:"away,omitempty"`
	Groups   map[string]int64 `json:"g"` // joined, in Unix milliseconds
}

// Kinds of presence signal.
const (
	msgHi       = "hi"    // to all: still here
	msgBye      = "bye"   // to all: shutting down
	msgJoin     = "join"  // to all: Client joined Group
	msgLeave    = "leave" // to all: Client left Group
	msgClient   = "cl"    // to all: Client is away or not
	msgSync     = "sync"  // to one: send me a snapshot
	msgSnapshot = "snap"  // to one: part of a snapshot
)

// snapshotPart is about how many bytes of members go in one snapshot
// signal, well under MaxSignal.
const snapshotPart = 48 << 10

// maxPending is how many signals a node keeps while it waits for a
// snapshot from their sender; past it, it asks again.
const maxPending = 4096

// presence is the server's view of the cluster.
type presence struct {
	s        *Server
	interval time.Duration

	mu      sync.Mutex
	seq     uint64                 // the last numbered signal this node sent
	nodes   map[string]*peerNode   // the other nodes, by ID
	synced  chan struct{}          // closed, and replaced, when a snapshot completes
	watch   []func(PresenceChange) // OnPresence's
	turns   map[string]string      // SendToOne: by group, the ID served last
	rings   map[string]*ring       // SendToOne: by group, its members in turn, until it changes
	gone    map[string]time.Time   // nodes that said bye lately, whose stray signals are ignored
	stopped bool

	hookMu  sync.Mutex
	hooks   []func() // for the loop, in order (later)
	hooking bool     // runLater is handing them over

	stop chan struct{} // closed by Shutdown: the ticker ends
	done chan struct{} // closed when it has
}

// peerNode is what another node told.
type peerNode struct {
	heard time.Time
	every time.Duration // its interval
	seq   uint64        // its last signal applied

	syncing  bool              // a snapshot is asked for; signals wait in pending
	asked    time.Time         // when it was
	pending  []presenceMessage // numbered signals that came meanwhile
	building *peerState        // the snapshot's parts so far
	parts    int               // how many have come

	state peerState
}

// peerState is one node's clients and groups.
type peerState struct {
	clients map[string]*peerClient          // by ID
	groups  map[string]map[string]time.Time // group → client ID → joined
}

type peerClient struct {
	identity json.RawMessage
	away     bool
}

func newPeerState() peerState {
	return peerState{clients: map[string]*peerClient{}, groups: map[string]map[string]time.Time{}}
}

// initPresence makes the presence's state; New calls it before the
// broker starts, which may hand the server signals at once.
func (s *Server) initPresence() {
	p := &s.presence
	p.s = s
	p.interval = s.opts.presenceInterval
	p.nodes = map[string]*peerNode{}
	p.synced = make(chan struct{})
	p.turns = map[string]string{}
	p.rings = map[string]*ring{}
	p.gone = map[string]time.Time{}
	p.stop, p.done = make(chan struct{}), make(chan struct{})
}

// startPresence starts telling the other nodes, once the broker has
// started; New calls it.
func (s *Server) startPresence() {
	p := &s.presence
	if !s.clustered {
		close(p.done)
		return
	}
	p.send("", presenceMessage{Kind: msgHi, New: true})
	go p.tick()
}

// stopPresence says bye and stops the ticker; Shutdown calls it once the
// clients have left.
func (p *presence) stopPresence() {
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		return
	}
	p.stopped = true
	close(p.stop)
	p.mu.Unlock()
	<-p.done
	if p.s.clustered {
		p.send("", presenceMessage{Kind: msgBye})
	}
}

// tick says hi every interval, counts silent nodes gone, and asks again
// for snapshots that did not come.
func (p *presence) tick() {
	defer close(p.done)
	t := time.NewTicker(p.interval)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case now := <-t.C:
			p.send("", presenceMessage{Kind: msgHi})
			p.check(now)
		}
	}
}

// check forgets the nodes silent for too long and asks again for overdue
// snapshots.
func (p *presence) check(now time.Time) {
	var changes []PresenceChange
	var ask []string
	p.mu.Lock()
	for id, at := range p.gone {
		if now.Sub(at) > time.Minute {
			delete(p.gone, id) // node IDs are random: it will not come back
		}
	}
	for id, n := range p.nodes {
		switch {
		case now.Sub(n.heard) > presenceMisses*max(n.every, p.interval):
			p.s.logger().Info("wszero: a node of the cluster went silent; its members are gone", "node", id)
			changes = append(changes, p.forgetLocked(id)...)
		case n.syncing && now.Sub(n.asked) > presenceMisses*p.interval:
			n.asked = now
			ask = append(ask, id)
		}
	}
	p.mu.Unlock()
	for _, id := range ask {
		p.send(id, presenceMessage{Kind: msgSync})
	}
	p.tell(changes)
}

// forgetLocked drops node id and returns its members' leaving.
func (p *presence) forgetLocked(id string) []PresenceChange {
	n := p.nodes[id]
	if n == nil {
		return nil
	}
	delete(p.nodes, id)
	p.notifyLocked()
	clear(p.rings)
	if len(p.watch) == 0 {
		return nil
	}
	return diff(id, n.state, newPeerState())
}

// send sends m to node, or to all when node is "", numbering the
// signals to all that change presence. The caller holds s.mu when m
// is a change, so that numbers follow the order of the changes.
func (p *presence) send(node string, m presenceMessage) {
	p.mu.Lock()
	switch m.Kind {
	case msgJoin, msgLeave, msgClient:
		p.seq++
		m.Seq = p.seq
	case msgHi:
		m.Seq = p.seq
		m.Every = p.interval.Milliseconds()
	}
	data, err := json.Marshal(m)
	if err == nil {
		err = p.s.signal(node, signalPresence, data)
	}
	p.mu.Unlock()
	if err != nil {
		p.s.logThrottledWarn("wszero: a presence signal could not be handed to the broker; the other nodes will ask again", "err", err)
	}
}

// joined tells the other nodes that c joined group; s.mu is held.
func (p *presence) joined(c *Client, group string, at time.Time) {
	p.changed(group)
	if p.s.clustered {
		p.send("", presenceMessage{Kind: msgJoin, Client: c.id, Group: group, Joined: at.UnixMilli(), Identity: c.identityJSON(), Away: c.toldAway})
	}
	p.local(Joined, c, group, at)
}

// left tells the other nodes that c left group; s.mu is held.
func (p *presence) left(c *Client, group string, at time.Time) {
	p.changed(group)
	if p.s.clustered {
		p.send("", presenceMessage{Kind: msgLeave, Client: c.id, Group: group})
	}
	p.local(Left, c, group, at)
}

// changed forgets group's ring: its members changed.
func (p *presence) changed(group string) {
	p.mu.Lock()
	delete(p.rings, group)
	p.mu.Unlock()
}

// awayChanged tells the other nodes whether c is away now. It takes s.mu,
// so that what it says follows the order of the changes.
func (p *presence) awayChanged(c *Client) {
	s := p.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.clients[c.id] != c {
		return
	}
	c.mu.Lock()
	away, groups := c.link == nil, joinedGroups(c.groups)
	c.mu.Unlock()
	if away == c.toldAway {
		return
	}
	c.toldAway = away
	if len(groups) == 0 {
		return // a join says whether it is away
	}
	if s.clustered {
		p.send("", presenceMessage{Kind: msgClient, Client: c.id, Away: away})
	}
	for _, g := range groups {
		p.local(awayKind(away), c, g.name, g.joined)
	}
}

// groupJoined is a group a client is in, and when it joined.
type groupJoined struct {
	name   string
	joined time.Time
}

// joinedGroups lists a client's groups (Client.groups), for use once its
// lock is let go.
func joinedGroups(groups map[string]time.Time) []groupJoined {
	out := make([]groupJoined, 0, len(groups))
	for g, at := range groups {
		out = append(out, groupJoined{g, at})
	}
	return out
}

// local hands a change of this node to OnPresence's functions, on the
// handler loop.
func (p *presence) local(kind PresenceKind, c *Client, group string, joined time.Time) {
	p.mu.Lock()
	watching := len(p.watch) > 0
	p.mu.Unlock()
	if !watching {
		return
	}
	m := c.member(p.s, joined)
	m.Away = kind == WentAway || (kind != CameBack && m.Away)
	p.tell([]PresenceChange{{Kind: kind, Group: group, Member: m, Client: c}})
}

// tell runs OnPresence's functions for changes, on the handler loop.
func (p *presence) tell(changes []PresenceChange) {
	if len(changes) == 0 {
		return
	}
	p.mu.Lock()
	watch := slices.Clone(p.watch)
	p.mu.Unlock()
	if len(watch) == 0 {
		return
	}
	p.later(func() {
		for _, ch := range changes {
			for _, fn := range watch {
				p.s.runHook("OnPresence", func() { fn(ch) })
			}
		}
	})
}

// later runs fn on the handler loop, after the functions given before it.
// It never waits: it is called with s.mu held, and from handlers, where
// submit could wait for the loop that runs them.
func (p *presence) later(fn func()) {
	p.hookMu.Lock()
	p.hooks = append(p.hooks, fn)
	start := !p.hooking
	p.hooking = true
	p.hookMu.Unlock()
	if start {
		go p.runLater()
	}
}

// runLater hands the functions queued by later to the loop, in order,
// until none is left.
func (p *presence) runLater() {
	for {
		p.hookMu.Lock()
		fns := p.hooks
		p.hooks = nil
		if len(fns) == 0 {
			p.hooking = false
			p.hookMu.Unlock()
			return
		}
		p.hookMu.Unlock()
		p.s.submit(func() {
			for _, fn := range fns {
				fn()
			}
		})
	}
}

// receive handles a presence signal from node from.
func (p *presence) receive(from string, data []byte) {
	var m presenceMessage
	if err := json.Unmarshal(data, &m); err != nil {
		p.s.logThrottledWarn("wszero: a presence signal from another node could not be read; is it another version of wszero?", "node", from, "err", err)
		return
	}
	if m.Kind == msgSync {
		p.sendSnapshot(from)
		return
	}
	var changes []PresenceChange
	ask, hiBack := false, false
	p.mu.Lock()
	n := p.nodes[from]
	switch {
	case m.Kind == msgBye:
		changes = p.forgetLocked(from)
		p.gone[from] = time.Now() // a node silent for a while comes back; one that said bye does not
		p.mu.Unlock()
		p.tell(changes)
		return
	case n == nil && !p.gone[from].IsZero():
		p.mu.Unlock()
		return // a stray signal of a node that has said bye
	case n == nil:
		n = &peerNode{state: newPeerState(), syncing: true, asked: time.Now()}
		p.nodes[from] = n
		ask = true
	}
	n.heard = time.Now()
	switch m.Kind {
	case msgHi:
		if m.Every > 0 {
			n.every = time.Duration(m.Every) * time.Millisecond
		}
		hiBack = m.New
		if !n.syncing && m.Seq > n.seq {
			ask = p.lostLocked(n) // its last signals were lost
		}
	case msgSnapshot:
		changes, ask = p.snapshotPartLocked(from, n, m)
	case msgJoin, msgLeave, msgClient:
		switch {
		case n.syncing:
			n.pending = append(n.pending, m)
			if len(n.pending) > maxPending {
				ask = p.lostLocked(n)
			}
		case m.Seq <= n.seq: // had already
		case m.Seq != n.seq+1:
			ask = p.lostLocked(n)
		default:
			n.seq = m.Seq
			changes = p.applyLocked(from, &n.state, m)
		}
	}
	p.mu.Unlock()
	if hiBack {
		p.send(from, presenceMessage{Kind: msgHi})
	}
	if ask {
		p.send(from, presenceMessage{Kind: msgSync})
	}
	p.tell(changes)
}

// lostLocked starts over with node n, whose signals were lost: it
// reports that a snapshot is to be asked for.
func (p *presence) lostLocked(n *peerNode) bool {
	n.syncing, n.asked, n.pending, n.building, n.parts = true, time.Now(), nil, nil, 0
	return true
}

// applyLocked applies a numbered signal to st and returns its change
// for OnPresence.
func (p *presence) applyLocked(node string, st *peerState, m presenceMessage) []PresenceChange {
	switch m.Kind {
	case msgJoin:
		cl := st.clients[m.Client]
		if cl == nil {
			cl = &peerClient{}
			st.clients[m.Client] = cl
		}
		cl.identity, cl.away = m.Identity, m.Away
		at := time.UnixMilli(m.Joined)
		st.join(m.Group, m.Client, at)
		delete(p.rings, m.Group)
		return p.changeLocked(Joined, node, m.Group, m.Client, cl, at)
	case msgLeave:
		g := st.groups[m.Group]
		at, in := g[m.Client]
		if !in {
			return nil
		}
		delete(g, m.Client)
		delete(p.rings, m.Group)
		if len(g) == 0 {
			delete(st.groups, m.Group)
		}
		cl := st.clients[m.Client]
		if !st.inAny(m.Client) {
			delete(st.clients, m.Client)
		}
		return p.changeLocked(Left, node, m.Group, m.Client, cl, at)
	case msgClient:
		cl := st.clients[m.Client]
		if cl == nil || cl.away == m.Away {
			return nil
		}
		cl.away = m.Away
		var changes []PresenceChange
		for group, members := range st.groups {
			if at, in := members[m.Client]; in {
				changes = append(changes, p.changeLocked(awayKind(m.Away), node, group, m.Client, cl, at)...)
			}
		}
		return changes
	}
	return nil
}

// join records that client joined group at the time given.
func (st *peerState) join(group, client string, at time.Time) {
	members := st.groups[group]
	if members == nil {
		members = map[string]time.Time{}
		st.groups[group] = members
	}
	members[client] = at
}

// inAny reports whether client is in any group of st. Clients are
// dropped with their last group: a node's clients in no group are not
// kept.
func (st *peerState) inAny(client string) bool {
	for _, members := range st.groups {
		if _, in := members[client]; in {
			return true
		}
	}
	return false
}

func (p *presence) changeLocked(kind PresenceKind, node, group, client string, cl *peerClient, at time.Time) []PresenceChange {
	if len(p.watch) == 0 {
		return nil
	}
	m := Member{ID: client, Node: node, Joined: at}
	if cl != nil {
		m.Identity, m.Away = cl.identity, cl.away
	}
	return []PresenceChange{{Kind: kind, Group: group, Member: m}}
}

// snapshotPartLocked takes in a part of node n's snapshot; with the last,
// the snapshot replaces what n told before.
func (p *presence) snapshotPartLocked(node string, n *peerNode, m presenceMessage) (changes []PresenceChange, ask bool) {
	if !n.syncing {
		return nil, false // not asked for, or asked twice: the first did
	}
	if m.Part != n.parts {
		return nil, p.lostLocked(n) // a part was lost
	}
	if n.building == nil {
		st := newPeerState()
		n.building = &st
	}
	n.parts++
	for _, sm := range m.Members {
		n.building.clients[sm.Client] = &peerClient{identity: sm.Identity, away: sm.Away}
		for g, at := range sm.Groups {
			n.building.join(g, sm.Client, time.UnixMilli(at))
		}
	}
	if !m.Last {
		return nil, false
	}
	old := n.state
	n.state, n.seq = *n.building, m.Seq
	clear(p.rings)
	n.syncing, n.building, n.parts = false, nil, 0
	pending := n.pending
	n.pending = nil
	if len(p.watch) > 0 {
		changes = diff(node, old, n.state)
	}
	for _, pm := range pending {
		switch {
		case pm.Seq <= n.seq:
		case pm.Seq != n.seq+1:
			return changes, p.lostLocked(n)
		default:
			n.seq = pm.Seq
			changes = append(changes, p.applyLocked(node, &n.state, pm)...)
		}
	}
	p.notifyLocked()
	return changes, false
}

// notifyLocked wakes whoever waits for the nodes' presence to be known
// (whenKnown): a snapshot came, or a node was forgotten.
func (p *presence) notifyLocked() {
	close(p.synced)
	p.synced = make(chan struct{})
}

// diff returns the changes from a node's old state to its new one.
func diff(node string, old, now peerState) []PresenceChange {
	var changes []PresenceChange
	member := func(st peerState, id string, at time.Time) Member {
		m := Member{ID: id, Node: node, Joined: at}
		if cl := st.clients[id]; cl != nil {
			m.Identity, m.Away = cl.identity, cl.away
		}
		return m
	}
	for group, members := range old.groups {
		for id, at := range members {
			if _, still := now.groups[group][id]; !still {
				changes = append(changes, PresenceChange{Kind: Left, Group: group, Member: member(old, id, at)})
			}
		}
	}
	for group, members := range now.groups {
		for id, at := range members {
			was, had := old.groups[group][id]
			m := member(now, id, at)
			switch {
			case !had || !was.Equal(at):
				changes = append(changes, PresenceChange{Kind: Joined, Group: group, Member: m})
			case old.clients[id] != nil && old.clients[id].away != m.Away:
				changes = append(changes, PresenceChange{Kind: awayKind(m.Away), Group: group, Member: m})
			}
		}
	}
	return changes
}

// sendSnapshot sends node everything about this node's groups, in parts
// of about snapshotPart bytes: a client in many groups may span parts.
func (p *presence) sendSnapshot(node string) {
	s := p.s
	var parts []presenceMessage
	cur, size := presenceMessage{Kind: msgSnapshot}, 0
	flush := func() {
		parts = append(parts, cur)
		cur, size = presenceMessage{Kind: msgSnapshot, Part: len(parts)}, 0
	}
	// s.mu keeps the groups still while the snapshot is taken, and
	// changes are numbered under it: the snapshot is exactly what the
	// signals up to its number told.
	s.mu.RLock()
	for c := range s.clientsInGroupsLocked() {
		c.mu.Lock()
		groups := joinedGroups(c.groups)
		c.mu.Unlock()
		sm := snapshotMember{Client: c.id, Identity: c.identityJSON(), Away: c.toldAway, Groups: map[string]int64{}}
		size += len(sm.Client) + len(sm.Identity) + 32
		for _, g := range groups {
			if _, in := s.groups[g.name][c]; !in {
				continue
			}
			sm.Groups[g.name] = g.joined.UnixMilli()
			size += len(g.name) + 24
			if size >= snapshotPart {
				cur.Members = append(cur.Members, sm)
				flush()
				sm.Groups = map[string]int64{}
			}
		}
		if len(sm.Groups) > 0 {
			cur.Members = append(cur.Members, sm)
		}
	}
	p.mu.Lock()
	seq := p.seq
	p.mu.Unlock()
	s.mu.RUnlock()
	parts = append(parts, cur)
	parts[len(parts)-1].Last = true
	for _, part := range parts {
		part.Seq = seq
		p.send(node, part)
	}
}

// clientsInGroupsLocked returns the set of clients in at least one group;
// s.mu is held.
func (s *Server) clientsInGroupsLocked() map[*Client]struct{} {
	in := map[*Client]struct{}{}
	for _, members := range s.groups {
		for c := range members {
			in[c] = struct{}{}
		}
	}
	return in
}

// maxIdentity is the most bytes of JSON a client's identity may take in
// Presence: every join tells it to every node.
const maxIdentity = 4 << 10

// identityJSON returns c's identity as JSON, nil when it has none, it
// cannot be made JSON, or it takes more than maxIdentity bytes; computed
// once.
func (c *Client) identityJSON() json.RawMessage {
	c.identityOnce.Do(func() {
		if c.identity == nil {
			return
		}
		data, err := json.Marshal(c.identity)
		switch {
		case err != nil:
			c.server.logThrottledWarn("wszero: a client's identity cannot be made JSON: Presence lists it without one", "client", c.id, "err", err)
			return
		case len(data) > maxIdentity:
			c.server.logThrottledWarn("wszero: a client's identity is too big for Presence, which lists it without one: keep it under 4 KiB as JSON (a name and an ID, not a profile)", "client", c.id, "bytes", len(data))
			return
		}
		c.identityData = data
	})
	return c.identityData
}

// member returns c as Presence lists it.
func (c *Client) member(s *Server, joined time.Time) Member {
	c.mu.Lock()
	away := c.link == nil
	c.mu.Unlock()
	node := ""
	if s.clustered {
		node = s.node
	}
	return Member{ID: c.id, Node: node, Joined: joined, Away: away, Identity: c.identityJSON()}
}

// OnPresence runs fn, on the handler loop, for every change of every
// group's members on every node of the cluster, this one's included:
// joins, leaves (a node that stops or goes silent leaves all its
// members), and members going away and coming back. A change of another
// node arrives one broker hop after it happened (see Presence).
//
// fn runs on every node for every node's changes: to tell pages, send to
// this node's own members (Members), not BroadcastTo, which every node
// would send again. For this server's own clients alone, handlers of the
// server-raised ops "group_join" and "group_leave" are simpler: they
// receive the client and {"group": name}.
func (s *Server) OnPresence(fn func(PresenceChange)) {
	if fn == nil {
		panic("wszero.OnPresence(nil): pass a function")
	}
	s.presence.mu.Lock()
	s.presence.watch = append(s.presence.watch, fn)
	s.presence.mu.Unlock()
}

// Presence lists the members of group on every node of the cluster, this
// one's first, each node's in the order they joined. Without a broker,
// they are this server's own.
//
// It asks no one: every node tells the others about its members as they
// change, one broker hop later (a millisecond or so on a local network).
// A node that stops says so, and its members are gone at once; one that
// vanishes without a word is counted gone once it has been silent for
// three presence intervals (WithPresenceInterval), noticed at the next
// interval: within 3 to 4 s by default. A change whose
// signal the broker lost is repaired within an interval and a round trip.
//
// When some node's presence is not known yet (it has just been heard of,
// or a lost signal is being repaired), Presence waits for it until ctx
// ends, then returns what it has with an error wrapping
// ErrPresenceIncomplete.
func (s *Server) Presence(ctx context.Context, group string) ([]Member, error) {
	if err := checkGroupName(group); err != nil {
		return nil, err
	}
	var remote []Member
	err := s.presence.whenKnown(ctx, func() { remote = s.presence.remoteLocked(group) })
	return append(s.localPresence(group), remote...), err
}

// CountMembers returns how many members group has on every node of the
// cluster, from what Presence knows, without asking the network; without a
// broker, on this server, like len(s.Members(group)). It waits, and fails,
// as Presence does.
func (s *Server) CountMembers(ctx context.Context, group string) (int, error) {
	n := 0
	err := s.presence.whenKnown(ctx, func() {
		for _, node := range s.presence.nodes {
			n += len(node.state.groups[group])
		}
	})
	return n + brokerNode{s}.Members(group), err
}

// whenKnown runs read with p.mu held (read must not take s.mu) once no node's presence is being
// fetched, or when ctx ends: then it reports which nodes are missing.
func (p *presence) whenKnown(ctx context.Context, read func()) error {
	for {
		p.mu.Lock()
		var missing []string
		for id, n := range p.nodes {
			if n.syncing {
				missing = append(missing, id)
			}
		}
		synced := p.synced
		if len(missing) == 0 || ctx.Err() != nil {
			read()
			p.mu.Unlock()
			if len(missing) > 0 {
				slices.Sort(missing)
				return fmt.Errorf("%w: nodes %s (%w)", ErrPresenceIncomplete, strings.Join(missing, ", "), ctx.Err())
			}
			return nil
		}
		p.mu.Unlock()
		select {
		case <-synced:
		case <-ctx.Done():
		}
	}
}

// localPresence lists group's members on this server.
func (s *Server) localPresence(group string) []Member {
	clients := s.Members(group)
	members := make([]Member, 0, len(clients))
	for _, c := range clients {
		c.mu.Lock()
		at, in := c.groups[group]
		c.mu.Unlock()
		if in {
			members = append(members, c.member(s, at))
		}
	}
	sortByJoined(members)
	return members
}

// sortByJoined orders members by when they joined, to the millisecond;
// those of one millisecond keep their order.
func sortByJoined(members []Member) {
	slices.SortStableFunc(members, func(a, b Member) int { return a.Joined.Compare(b.Joined) })
}

// remoteLocked lists group's members on the other nodes, by node, each
// node's in the order they joined; p.mu is held.
func (p *presence) remoteLocked(group string) []Member {
	ids := make([]string, 0, len(p.nodes))
	for id := range p.nodes {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var members []Member
	for _, id := range ids {
		st := p.nodes[id].state
		start := len(members)
		for client, at := range st.groups[group] {
			m := Member{ID: client, Node: id, Joined: at}
			if cl := st.clients[client]; cl != nil {
				m.Identity, m.Away = cl.identity, cl.away
			}
			members = append(members, m)
		}
		slices.SortFunc(members[start:], func(a, b Member) int { return strings.Compare(a.ID, b.ID) })
		sortByJoined(members[start:])
	}
	return members
}

// raiseGroupOp runs the handler of op (group_join or group_leave), if
// any, for c and group, on the handler loop. s.mu is held.
func (s *Server) raiseGroupOp(op string, c *Client, group string) {
	h := s.handlerFor(op)
	if h == nil {
		return
	}
	name, _ := json.Marshal(group)
	s.presence.later(func() {
		var arg any
		var err error
		if h.Input != binding.InputNone {
			arg, err = s.bind(h, map[string]json.RawMessage{protocol.KeyGroup: name})
		}
		if err != nil {
			s.logger().Error(`wszero: the handler of "`+op+`" cannot take its parameter: it receives {"group": name}; take (c *wszero.Client, p struct{ Group string })`, "err", err)
			return
		}
		s.invoke(c, message{h: h, arg: arg})
	})
}

// runHook runs fn, a function of the application's, recovering a panic.
func (s *Server) runHook(what string, fn func()) {
	defer func() {
		if v := recover(); v != nil {
			s.logger().Error("wszero: a function given to "+what+" panicked", "panic", v, "stack", string(debug.Stack()))
		}
	}()
	fn()
}

// knows reports whether node is a node of the cluster that this one has
// heard from (and not counted gone).
func (p *presence) knows(node string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.nodes[node]
	return ok
}
