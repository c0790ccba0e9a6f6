package wszero

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/wszero/wszero/internal/protocol"
)

// Broadcast sends {"op": op, …params} to every connected client, on every
// node of the cluster with WithBroker. The message is encoded once for
// everyone; it returns as soon as the message is queued for each client,
// and a slow client never delays the others. params takes the same forms
// as in Client.Send.
func (s *Server) Broadcast(op string, params any) error {
	return s.fanOut(Target{}, nil, op, params)
}

// BroadcastOthers sends {"op": op, …params} to every client but c, on
// every node of the cluster with WithBroker: what a chat does with a
// line its writer has shown already. Like Broadcast, it is encoded once
// for everyone and never waits for a slow client.
func (c *Client) BroadcastOthers(op string, params any) error {
	return c.server.fanOut(Target{}, c, op, params)
}

// BroadcastToOthers sends {"op": op, …params} to every member of group
// but c, on every node of the cluster with WithBroker, as BroadcastTo
// does; c need not be a member.
func (c *Client) BroadcastToOthers(group, op string, params any) error {
	if err := checkGroupName(group); err != nil {
		return err
	}
	return c.server.fanOut(Target{Group: group}, c, op, params)
}

// fanOut encodes and frames {"op": op, …params} once, queues it for this
// server's clients that to names (everyone, or the members of a group
// whose name the caller has checked) but except (nil: none), and hands it
// to the other nodes. except is always this node's client: the other
// nodes deliver to all theirs.
func (s *Server) fanOut(to Target, except *Client, op string, params any) error {
	pm, data, err := s.prepare(op, params)
	if err != nil {
		return err
	}
	s.deliverFrame(s.members(to.Group, to.Group == ""), except, pm, data)
	return s.publish(to, data)
}

// broadcastFrame queues a prepared frame for every client.
func (s *Server) broadcastFrame(pm *preparedFrame, data []byte) {
	s.deliverFrame(s.members("", true), nil, pm, data)
}

// deliverFrame queues a prepared frame for each of members but except
// (nil: none).
func (s *Server) deliverFrame(members []*Client, except *Client, pm *preparedFrame, data []byte) {
	for _, c := range members {
		if c != except {
			_ = c.enqueue(outFrame{kind: frameText, data: data, prepared: pm})
		}
	}
}

// members returns a snapshot of every client (all) or of group's members,
// which the caller ranges over without holding s.mu: a broadcast never
// holds the server's lock while it queues, and a change of membership
// costs one rebuild, at the next broadcast. The snapshot is not to be
// modified.
func (s *Server) members(group string, all bool) []*Client {
	s.mu.RLock()
	snap, ok := s.allSnap, s.allSnap != nil
	if !all {
		snap, ok = s.groupSnaps[group]
	}
	s.mu.RUnlock()
	if ok {
		return snap
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if all {
		if s.allSnap == nil {
			s.allSnap = make([]*Client, 0, len(s.clients))
			for _, c := range s.clients {
				s.allSnap = append(s.allSnap, c)
			}
		}
		return s.allSnap
	}
	if snap, ok := s.groupSnaps[group]; ok {
		return snap
	}
	set := s.groups[group]
	if set == nil {
		return nil // not kept: groups come and go
	}
	snap = make([]*Client, 0, len(set))
	for c := range set {
		snap = append(snap, c)
	}
	s.groupSnaps[group] = snap
	return snap
}

// BroadcastTo sends {"op": op, …params} to every member of group, like
// Broadcast, on every node of the cluster with WithBroker. A group with no
// members is not an error.
func (s *Server) BroadcastTo(group, op string, params any) error {
	if err := checkGroupName(group); err != nil {
		return err
	}
	return s.fanOut(Target{Group: group}, nil, op, params)
}

// Members returns the clients in group on this server, in the order they
// first connected, those away included: what is sent to the group while
// they are away is delivered when they are back. With WithBroker, other
// nodes' members are not listed; CountMembers counts them.
func (s *Server) Members(group string) []*Client {
	s.mu.RLock()
	members := make([]*Client, 0, len(s.groups[group]))
	for c := range s.groups[group] {
		members = append(members, c)
	}
	s.mu.RUnlock()
	sortByArrival(members)
	return members
}

// AddToGroup puts the client in group, so that BroadcastTo(group, …) reaches
// it. Adding it again does nothing. Group names starting with "_" are
// reserved for wszero; a client that has disconnected cannot join; a client
// already in as many groups as WithMaxGroupsPerClient allows cannot join
// another (the error wraps ErrTooManyGroups).
func (c *Client) AddToGroup(group string) error {
	if err := checkGroupName(group); err != nil {
		return err
	}
	s := c.server
	s.mu.Lock()
	defer s.mu.Unlock()
	c.mu.Lock()
	if s.clients[c.id] != c || c.left {
		c.mu.Unlock()
		return fmt.Errorf("%w: it cannot join %.40q", ErrClosed, group)
	}
	if _, in := c.groups[group]; !in && s.opts.maxGroupsPerClient > 0 && len(c.groups) >= s.opts.maxGroupsPerClient {
		c.mu.Unlock()
		limit := s.opts.maxGroupsPerClient
		s.logger().Warn("wszero: a client reached the group limit", "client", c.id, "group", group, "limit", limit)
		return fmt.Errorf("%w: the client cannot join %.40q: it is already in %d groups, the most one client may be in (wszero.WithMaxGroupsPerClient); take it out of one first",
			ErrTooManyGroups, group, limit)
	}
	if c.groups == nil {
		c.groups = make(map[string]time.Time)
	}
	joined, already := c.groups[group]
	if !already {
		joined = time.Now().Truncate(time.Millisecond)
		c.groups[group] = joined
	}
	c.mu.Unlock()
	members := s.groups[group]
	if members == nil {
		members = make(map[*Client]struct{})
		s.groups[group] = members
		s.broker.GroupChanged(group) // its first member here
	}
	if _, in := members[c]; !in {
		members[c] = struct{}{}
		delete(s.groupSnaps, group)
		s.presence.joined(c, group, joined)
		s.raiseGroupOp(protocol.OpJoin, c, group)
	}
	return nil
}

// RemoveFromGroup takes the client out of group. Removing it from a group it
// is not in does nothing.
func (c *Client) RemoveFromGroup(group string) {
	s := c.server
	s.mu.Lock()
	defer s.mu.Unlock()
	s.leaveGroupLocked(c, group)
	c.mu.Lock()
	delete(c.groups, group)
	c.mu.Unlock()
}

// Groups returns the names of the groups the client is in, sorted. Once
// it has disconnected, they are the groups it was in when it left, so
// that its disconnect handler can tell them ("Ada left team red"); it is
// a member of none of them any more.
func (c *Client) Groups() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	names := slices.AppendSeq(make([]string, 0, len(c.groups)), maps.Keys(c.groups)) // empty, not nil, with none
	slices.Sort(names)
	return names
}

// leaveGroupLocked removes c from group's members; s.mu is held.
func (s *Server) leaveGroupLocked(c *Client, group string) {
	members := s.groups[group]
	if _, in := members[c]; !in {
		return
	}
	delete(members, c)
	delete(s.groupSnaps, group)
	// c.groups changes only under s.mu, which is held: no c.mu to read it.
	s.presence.left(c, group, c.groups[group])
	s.raiseGroupOp(protocol.OpLeave, c, group)
	if len(members) == 0 && members != nil {
		delete(s.groups, group)
		s.broker.GroupChanged(group) // its last member here has left
	}
}

// maxGroupName is the longest group name, in bytes: a client's input made
// into group names cannot make the server keep more than
// WithMaxGroupsPerClient × this for it.
const maxGroupName = 256

// checkGroupName refuses names a client may not join.
func checkGroupName(group string) error {
	switch {
	case len(group) > maxGroupName:
		return fmt.Errorf("wszero: a group name is at most %d bytes; this one is %d, starting %.40q: choose a shorter one", maxGroupName, len(group), group)
	case group == "":
		return errors.New(`wszero: a group needs a name, like "team-red"`)
	case strings.HasPrefix(group, protocol.ReservedPrefix):
		return fmt.Errorf(`wszero: group %q: names starting with "_" are reserved for wszero; choose a name without the "_"`, group)
	}
	return nil
}

// sortByArrival orders clients by when they connected.
func sortByArrival(cs []*Client) {
	sort.Slice(cs, func(i, j int) bool { return cs[i].seq < cs[j].seq })
}
