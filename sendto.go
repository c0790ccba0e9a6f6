package wszero

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// newClientID returns a new client's ID: random, and prefixed by the node's
// ID when the server is part of a cluster.
func (s *Server) newClientID() string {
	if s.clustered {
		return s.node + "." + newClientID()
	}
	return newClientID()
}

// SendTo sends {"op": op, …params} to the client whose ID is clientID,
// wherever it is connected: on this server, or on another node of the
// cluster (WithBroker). params takes the same forms as in Client.Send.
//
// For a client of this server it returns ErrClosed when the client has
// gone. For a client of another node it returns once the message is handed
// to the broker, without waiting: if that client has gone, the message is
// dropped there.
func (s *Server) SendTo(clientID, op string, params any) error {
	if c := s.Client(clientID); c != nil {
		return c.Send(op, params)
	}
	node := NodeOf(clientID)
	if !s.clustered || node == "" || node == s.node {
		return fmt.Errorf("%w: no client has the ID %.60q", ErrClosed, clientID)
	}
	data, err := s.encode(op, params)
	if err != nil {
		return err
	}
	if err := s.broker.Publish(Target{Client: clientID}, data); err != nil {
		return fmt.Errorf("wszero: the message to %.60q could not be handed to the broker: %w", clientID, err)
	}
	return nil
}

// Client returns the client of this server whose ID is id, connected or
// away (see Client.Away), or nil when it is not here: it left, or lives on
// another node (SendTo reaches it there).
func (s *Server) Client(id string) *Client {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.clients[id]
}

// ErrNoMembers is wrapped by the error of SendToOne when the group has no
// member on any node.
var ErrNoMembers = errors.New("wszero: the group has no members")

// SendToOne sends {"op": op, …params} to one member of group, on any node
// of the cluster: successive messages take the members in turn, those of
// every node (members that are away take a turn only when every member
// is). A pool of workers that join one group, with the Go client, shares
// the work this way. params takes the same forms as in Client.Send.
//
// With no member anywhere it returns an error wrapping ErrNoMembers. For
// a member of another node it returns once the message is handed to the
// broker; if that member has left meanwhile, another member of the group
// on its node takes the message, and when none is left it is dropped
// there (and logged). The members of other nodes are those Presence
// lists, and the same freshness applies.
func (s *Server) SendToOne(group, op string, params any) error {
	if err := checkGroupName(group); err != nil {
		return err
	}
	for range 3 { // a local member chosen may leave before it is sent to
		id, local := s.presence.nextMember(group)
		switch {
		case id == "":
			return fmt.Errorf("%w: no client on any node is in %.40q to take %q", ErrNoMembers, group, op)
		case local != nil:
			err := local.Send(op, params)
			if errors.Is(err, ErrClosed) {
				continue
			}
			return err
		}
		data, err := s.encode(op, params)
		if err != nil {
			return err
		}
		if err := s.broker.Publish(Target{Group: group, Client: id}, data); err != nil {
			return fmt.Errorf("wszero: the message for one of %.40q could not be handed to the broker: %w", group, err)
		}
		return nil
	}
	return fmt.Errorf("%w: the members of %.40q chosen kept leaving", ErrNoMembers, group)
}

// nextLocalMember returns a connected member of group on this server, or
// any member when none is connected, or nil when it has none.
func (s *Server) nextLocalMember(group string) *Client {
	var away *Client
	for _, c := range s.members(group, false) {
		if !c.Away() {
			return c
		}
		away = c
	}
	return away
}

// maxTurns bounds SendToOne's memory of whose turn it is, by group.
const maxTurns = 4096

// nextMember chooses whose turn it is in group: the member after the one
// served last, in the order of their IDs, connected members first. It
// returns the member's ID, and the Client when it is on this server.
//
// The group's members in that order (its ring) are kept between calls
// until the group changes, so that a turn costs a search, not a look at
// every member.
func (p *presence) nextMember(group string) (string, *Client) {
	p.mu.Lock()
	r := p.rings[group]
	p.mu.Unlock()
	if r == nil {
		r = p.buildRing(group)
	}
	if len(r.members) == 0 {
		p.mu.Lock()
		delete(p.turns, group)
		p.mu.Unlock()
		return "", nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	last := p.turns[group]
	start, _ := slices.BinarySearchFunc(r.members, last, func(m ringMember, id string) int { return strings.Compare(m.id, id) })
	if start < len(r.members) && r.members[start].id == last {
		start++
	}
	chosen := -1
	for i := range r.members { // the first connected one from start on
		m := r.members[(start+i)%len(r.members)]
		if !m.away() {
			chosen = (start + i) % len(r.members)
			break
		}
	}
	if chosen < 0 { // all away: the next in turn
		chosen = start % len(r.members)
	}
	m := r.members[chosen]
	if _, known := p.turns[group]; !known && len(p.turns) >= maxTurns {
		clear(p.turns)
		clear(p.rings)
	}
	p.turns[group] = m.id
	return m.id, m.c
}

// ring is a group's members on every node, sorted by ID, for SendToOne.
type ring struct{ members []ringMember }

// ringMember is one member of a ring: a client of this server, or of
// another node.
type ringMember struct {
	id     string
	c      *Client     // on this server, else nil
	remote *peerClient // on another node; read with p.mu held
}

// away reports whether the member is away; p.mu is held.
func (m ringMember) away() bool {
	if m.c != nil {
		return m.c.Away()
	}
	return m.remote != nil && m.remote.away
}

// buildRing makes group's ring from its members here and on the other
// nodes, and keeps it until the group changes.
func (p *presence) buildRing(group string) *ring {
	s := p.s
	// s.mu first, then p.mu, as a join takes them: no change of the
	// group can slip between the two parts of the ring.
	s.mu.RLock()
	defer s.mu.RUnlock()
	r := &ring{}
	for c := range s.groups[group] {
		r.members = append(r.members, ringMember{id: c.id, c: c})
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, n := range p.nodes {
		for id := range n.state.groups[group] {
			r.members = append(r.members, ringMember{id: id, remote: n.state.clients[id]})
		}
	}
	slices.SortFunc(r.members, func(a, b ringMember) int { return strings.Compare(a.id, b.id) })
	if len(r.members) > 0 && p.turns != nil {
		p.rings[group] = r
	}
	return r
}
