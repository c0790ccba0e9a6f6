package wszero

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"
)

// Broker carries broadcasts and sends between the servers (nodes) of a
// cluster, so that Broadcast, BroadcastTo and SendTo reach clients connected
// to any of them. The default broker is in-process: a server alone needs
// none. The package github.com/wszero/wszero/natsbroker is one on NATS.
//
// A Server delivers to its own clients directly and then hands the message,
// already encoded as the frame its clients receive, to Publish; the broker
// must carry it to every other node and not back to this one. A broker
// delivers what other nodes publish by calling Node.Deliver.
//
// Publish is called from handlers, and GroupChanged with the server's lock
// held: both must return at once, never wait for the network, and
// GroupChanged must not call back into the Server. The Server calls Start once, from New,
// and Close once, at the end of Shutdown: the Server owns the broker's
// lifetime from WithBroker on.
type Broker interface {
	// Start attaches the broker to the node it serves and subscribes to
	// what every node receives: broadcasts, and sends to its own clients.
	Start(node Node) error
	// Publish sends frame to the clients of other nodes that to names.
	Publish(to Target, frame []byte) error
	// GroupChanged says that group has gained its first member on this
	// node, or lost its last. The broker reads Node.Members when it is
	// ready, subscribes to the group while it has local members and
	// unsubscribes when it has none.
	GroupChanged(group string)
	// CountMembers returns the number of group's members on every node,
	// this one included. It may wait for other nodes, at most until ctx ends.
	CountMembers(ctx context.Context, group string) (int, error)
	// Close sends what is still queued, stops delivering and lets go of
	// the broker's connections, giving up when ctx ends.
	Close(ctx context.Context) error
}

// Target names the clients a published frame is for: the members of Group,
// the client whose ID is Client, or everyone when both are empty.
type Target struct {
	Group  string
	Client string
}

// Node is what a Broker sees of the Server it serves. Its methods are safe
// to call from any goroutine.
type Node interface {
	// ID returns the node's ID: random, a few URL-safe characters
	// (A–Z, a–z, 0–9, "-" and "_"), the prefix of its clients' IDs.
	ID() string
	// Deliver sends frame, which another node published, to the clients
	// of this node that to names. The frame is prepared once for all.
	Deliver(to Target, frame []byte)
	// Members returns how many members group has on this node.
	Members(group string) int
	// AcceptTunnel is called when another node opens a tunnel to this one
	// (see Tunneler) with hello, the tunnel's first words. It returns
	// serve, which the broker calls on a goroutine of its own with the
	// tunnel's end, and which owns it; or, when the node refuses, why.
	AcceptTunnel(hello []byte) (serve func(net.Conn), refused string)
}

// Tunneler is a Broker that carries byte streams between nodes: a client
// whose connection dropped and that reconnects to another node (behind a
// load balancer without sticky sessions) resumes through one, to the node
// that holds its session. natsbroker's Broker is one. Without it, such a
// client starts a new session.
type Tunneler interface {
	// Tunnel opens a byte stream to node, which receives hello first,
	// through its Node.AcceptTunnel. It fails when the node refuses (the
	// error says why), when no such node runs, or when ctx ends first.
	// Closing the stream's either end closes the other, and reads there
	// return io.EOF.
	Tunnel(ctx context.Context, node string, hello []byte) (net.Conn, error)
}

// NodeOf returns the ID of the node that a client ID names (the part
// before the first "."), or "" when id names none: a client of a server
// without a broker, or not an ID at all.
func NodeOf(clientID string) string {
	node, _, ok := strings.Cut(clientID, ".")
	if !ok || !validNodeID(node) {
		return ""
	}
	return node
}

// validNodeID reports whether node is a non-empty base64url string, which
// is safe in a NATS subject and in URLs.
func validNodeID(node string) bool {
	if node == "" || len(node) > 64 {
		return false
	}
	for _, r := range node {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
		default:
			return false
		}
	}
	return true
}

// newNodeID returns a random node ID.
func newNodeID() string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("wszero: no randomness for the node ID: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// WithBroker spreads the server over a cluster: Broadcast, BroadcastTo and
// SendTo reach clients connected to every server that uses a broker on the
// same network (NATS, with github.com/wszero/wszero/natsbroker), and client
// IDs name the node they live on ("node.random"). Clients and Members stay
// this server's own; CountMembers counts over the cluster.
//
// The server starts the broker in New and closes it at the end of Shutdown;
// do not share one broker between servers. New panics if the broker cannot
// start.
func WithBroker(b Broker) Option {
	if b == nil {
		panic("wszero.WithBroker(nil): pass a broker, such as natsbroker.Connect's")
	}
	return func(o *options) { o.broker = b }
}

// localBroker is the default, in-process broker: a lone server has no other
// node to reach.
type localBroker struct{ node Node }

func (b *localBroker) Start(n Node) error           { b.node = n; return nil }
func (b *localBroker) Publish(Target, []byte) error { return nil }
func (b *localBroker) GroupChanged(string)          {}
func (b *localBroker) Close(context.Context) error  { return nil }
func (b *localBroker) CountMembers(_ context.Context, group string) (int, error) {
	return b.node.Members(group), nil
}

// brokerNode is the Server as its broker sees it.
type brokerNode struct{ s *Server }

func (n brokerNode) ID() string { return n.s.node }

func (n brokerNode) Members(group string) int {
	n.s.mu.RLock()
	defer n.s.mu.RUnlock()
	return len(n.s.groups[group])
}

func (n brokerNode) AcceptTunnel(hello []byte) (func(net.Conn), string) {
	return n.s.acceptTunnel(hello)
}

func (n brokerNode) Deliver(to Target, frame []byte) {
	s := n.s
	if to.Client != "" {
		s.mu.RLock()
		c := s.clients[to.Client]
		s.mu.RUnlock()
		if c != nil {
			_ = c.enqueue(outFrame{kind: frameText, data: frame})
		}
		return
	}
	pm := newPreparedFrame(frame)
	if to.Group == "" {
		s.broadcastFrame(pm, frame)
		return
	}
	s.deliverFrame(s.members(to.Group, false), nil, pm, frame)
}

// startBroker starts the server's broker; New calls it.
func (s *Server) startBroker() {
	s.node = newNodeID()
	if s.opts.broker == nil {
		s.broker = &localBroker{}
	} else {
		s.broker, s.clustered = s.opts.broker, true
	}
	if err := s.broker.Start(brokerNode{s}); err != nil {
		panic(fmt.Sprintf("wszero.WithBroker: the broker could not start: %v", err))
	}
}

// publish hands a frame already delivered here to the other nodes.
func (s *Server) publish(to Target, frame []byte) error {
	if err := s.broker.Publish(to, frame); err != nil {
		return fmt.Errorf("wszero: delivered on this server, but not to the others: %w", err)
	}
	return nil
}

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

// CountMembers returns how many members group has on every node of the
// cluster; without a broker, on this server, like len(s.Members(group)).
// With natsbroker it asks the other nodes and waits a moment for their
// answers (see natsbroker.WithCountTimeout), so the count is approximate: a
// node that answers late, or clients that join or leave meanwhile, are
// missed. When the broker cannot reach the others it returns this server's
// count with the error.
func (s *Server) CountMembers(ctx context.Context, group string) (int, error) {
	n, err := s.broker.CountMembers(ctx, group)
	if err != nil {
		return brokerNode{s}.Members(group), err
	}
	return n, nil
}

// closeBroker closes the broker at the end of Shutdown.
func (s *Server) closeBroker(ctx context.Context) error {
	if err := s.broker.Close(ctx); err != nil && !errors.Is(err, context.Canceled) {
		s.logger().Warn("wszero: the broker did not close cleanly", "err", err)
		return err
	}
	return nil
}
