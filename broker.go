package wszero

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// Broker carries broadcasts, sends and the nodes' own signals between the
// servers (nodes) of a cluster, so that Broadcast, BroadcastTo, SendTo,
// SendToOne, Presence and a session's resume reach clients connected to
// any of them. The default broker is in-process: a server alone needs
// none. The packages github.com/wszero/wszero/natsbroker and
// github.com/wszero/wszero/redisbroker are brokers on NATS and on Redis;
// github.com/wszero/wszero/brokertest checks a new one.
//
// A broker is a transport only: what the messages mean (presence, who is
// in which group on which node, tunnels for resuming) is the Server's, the
// same over every broker.
//
// A Server delivers to its own clients directly and then hands the message,
// already encoded as the frame its clients receive, to Publish; the broker
// must carry it to every other node and not back to this one. A broker
// delivers what other nodes publish by calling Node.Deliver, and what they
// signal by calling Node.Signal.
//
// Publish, Signal and GroupChanged are called from handlers and with the
// server's lock held: they must return at once, never wait for the
// network, and must not call back into the Server. The Server calls Start
// once, from New, and Close once, at the end of Shutdown: the Server owns
// the broker's lifetime from WithBroker on.
type Broker interface {
	// Start attaches the broker to the node it serves and subscribes to
	// what every node receives: broadcasts, signals, and sends to its own
	// clients.
	Start(node Node) error
	// Publish sends frame to the clients of other nodes that to names.
	Publish(to Target, frame []byte) error
	// Signal sends msg, at most MaxSignal bytes, to node's Node.Signal,
	// or to every other node's when node is "". What one node signals
	// must reach each other node in the order it was sent, unchanged and
	// once; it may be lost (while the broker reconnects, say): the
	// Server numbers its signals and repairs what a loss breaks.
	Signal(node string, msg []byte) error
	// GroupChanged says that group has gained its first member on this
	// node, or lost its last. The broker reads Node.Members when it is
	// ready, subscribes to the group while it has local members and
	// unsubscribes when it has none.
	GroupChanged(group string)
	// Close sends what is still queued, stops delivering and lets go of
	// the broker's connections, giving up when ctx ends.
	Close(ctx context.Context) error
}

// MaxSignal is the size of the largest message a Server passes to
// Broker.Signal: every broker must carry messages this large.
const MaxSignal = 128 << 10

// Target names the clients a published frame is for: the members of Group,
// the client whose ID is Client, or everyone when both are empty. When
// both are set (SendToOne), the frame is for the client whose ID is
// Client or, if it has left, for one other member of Group on its node:
// a broker routes it as it routes a frame for Client.
type Target struct {
	Group  string
	Client string
}

// Node is what a Broker sees of the Server it serves. Its methods are safe
// to call from any goroutine, and return at once.
type Node interface {
	// ID returns the node's ID: random, a few URL-safe characters
	// (A–Z, a–z, 0–9, "-" and "_"), the prefix of its clients' IDs.
	ID() string
	// Deliver sends frame, which another node published, to the clients
	// of this node that to names. The frame is prepared once for all.
	Deliver(to Target, frame []byte)
	// Signal hands the node msg, which the node whose ID is from passed
	// to its Broker.Signal. The node keeps no reference to msg.
	Signal(from string, msg []byte)
	// Members returns how many members group has on this node.
	Members(group string) int
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

// WithBroker spreads the server over a cluster: broadcasts, SendTo,
// SendToOne, Presence, OnPresence and resuming a session reach or see
// clients connected to every server that uses a broker on the same
// network (NATS with github.com/wszero/wszero/natsbroker, Redis with
// github.com/wszero/wszero/redisbroker), and client IDs name the node they
// live on ("node.random"). Clients, Members and Client stay this server's
// own; CountMembers counts over the cluster.
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

// Node returns the server's ID in its cluster, the prefix of its
// clients' IDs and what Member.Node names; "" without WithBroker.
func (s *Server) Node() string {
	if !s.clustered {
		return ""
	}
	return s.node
}

// localBroker is the default, in-process broker: a lone server has no other
// node to reach.
type localBroker struct{ node Node }

func (b *localBroker) Start(n Node) error           { b.node = n; return nil }
func (b *localBroker) Publish(Target, []byte) error { return nil }
func (b *localBroker) Signal(string, []byte) error  { return nil }
func (b *localBroker) GroupChanged(string)          {}
func (b *localBroker) Close(context.Context) error  { return nil }

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

// closeBroker closes the broker at the end of Shutdown.
func (s *Server) closeBroker(ctx context.Context) error {
	if err := s.broker.Close(ctx); err != nil && !errors.Is(err, context.Canceled) {
		s.logger().Warn("wszero: the broker did not close cleanly", "err", err)
		return err
	}
	return nil
}
