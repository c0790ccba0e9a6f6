package wszero

import (
	"errors"
	"fmt"
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
func (p *presence) nextMember(group string) (string, *Client) {
	s := p.s
	var localIDs []string
	var localAway []bool
	byID := map[string]*Client{}
	for _, c := range s.members(group, false) {
		localIDs = append(localIDs, c.id)
		localAway = append(localAway, c.Away())
		byID[c.id] = c
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	last := p.turns[group]
	pick := func(connectedOnly bool) string {
		next, first := "", ""
		consider := func(id string, away bool) {
			if connectedOnly && away {
				return
			}
			if first == "" || id < first {
				first = id
			}
			if id > last && (next == "" || id < next) {
				next = id
			}
		}
		for i, id := range localIDs {
			consider(id, localAway[i])
		}
		for _, n := range p.nodes {
			for id := range n.state.groups[group] {
				away := false
				if cl := n.state.clients[id]; cl != nil {
					away = cl.away
				}
				consider(id, away)
			}
		}
		if next == "" {
			return first
		}
		return next
	}
	id := pick(true)
	if id == "" {
		id = pick(false)
	}
	if id == "" {
		delete(p.turns, group)
		return "", nil
	}
	if _, known := p.turns[group]; !known && len(p.turns) >= maxTurns {
		clear(p.turns)
	}
	p.turns[group] = id
	return id, byID[id]
}
