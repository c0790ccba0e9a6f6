package brokertest

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/wszero/wszero"
)

// Hub is an in-memory cluster: the brokers it makes carry broadcasts,
// sends and signals between the servers of one process, the way a broker
// on NATS or Redis carries them between processes. Each node receives on
// a goroutine of its own, what each other node sent in the order it was
// sent, and never on the goroutine that published or signalled: a Server
// never hears from its broker while it calls it. A group's frames reach a
// node while it has members there, as its GroupChanged calls say. Run
// checks it like any other engine; use it to run a cluster of wszero
// servers in one test.
//
// A Hub loses nothing and needs no closing: each broker ends with its
// server's Shutdown. Its methods, and its brokers', are safe to call from
// any goroutine.
type Hub struct {
	mu    sync.Mutex            // taken before a broker's own mu, never after
	nodes map[string]*hubBroker // started and not closed, by node ID
}

// NewHub returns an empty Hub.
func NewHub() *Hub {
	return &Hub{nodes: map[string]*hubBroker{}}
}

// Broker returns a new broker of the hub, for one server
// (wszero.WithBroker): it joins the hub's cluster when the server starts
// it and leaves when the server closes it.
func (h *Hub) Broker() wszero.Broker {
	return &hubBroker{hub: h, wake: make(chan struct{}, 1), done: make(chan struct{}), ended: make(chan struct{})}
}

// errClosed is what a closed broker's Publish and Signal return.
var errClosed = errors.New("brokertest: the hub's broker is closed")

// hubBroker is one node's broker on a Hub.
type hubBroker struct {
	hub  *Hub
	node wszero.Node
	id   string

	mu      sync.Mutex
	started bool
	closed  bool
	inbox   []delivery // what this node is to receive, in order

	wake  chan struct{} // a delivery is in inbox
	done  chan struct{} // closed by Close: receive ends
	ended chan struct{} // closed when receive has

	subs map[string]bool // the groups this node receives, as receive last read them; receive's own
}

// delivery is one thing a node receives: a frame, a signal, or the note
// that one of its own groups changed.
type delivery struct {
	kind  byte // deliverFrame, deliverSignal or deliverGroup
	from  string
	to    wszero.Target
	group string // deliverGroup
	data  []byte
}

// Kinds of delivery.
const (
	deliverFrame  = 'f'
	deliverSignal = 's'
	deliverGroup  = 'g'
)

// Start joins the hub under node's ID and starts receiving.
func (b *hubBroker) Start(node wszero.Node) error {
	id := node.ID()
	b.mu.Lock()
	switch {
	case b.started:
		b.mu.Unlock()
		return errors.New("brokertest: this broker already serves a server; take one Hub.Broker per server")
	case b.closed:
		b.mu.Unlock()
		return errClosed
	}
	b.node, b.id, b.started = node, id, true
	b.subs = map[string]bool{}
	b.mu.Unlock()
	go b.receive() // until Close, even when the ID is taken
	b.hub.mu.Lock()
	_, taken := b.hub.nodes[id]
	if !taken {
		b.hub.nodes[id] = b
	}
	b.hub.mu.Unlock()
	if taken {
		return fmt.Errorf("brokertest: a node with the ID %q is already on the hub", id)
	}
	return nil
}

// Publish queues frame for the other nodes that to names: the node of
// to.Client, the nodes with members of to.Group (as each of them knows
// when the frame reaches it), or every other node.
func (b *hubBroker) Publish(to wszero.Target, frame []byte) error {
	d := delivery{kind: deliverFrame, from: b.id, to: to, data: append([]byte(nil), frame...)}
	if to.Client == "" {
		return b.toOthers("", d)
	}
	node := wszero.NodeOf(to.Client)
	if node == "" {
		return fmt.Errorf("brokertest: %.60q is not the ID of a client in a cluster", to.Client)
	}
	return b.toOthers(node, d)
}

// Signal queues msg for node's Node.Signal, or every other node's when
// node is "".
func (b *hubBroker) Signal(node string, msg []byte) error {
	if len(msg) > wszero.MaxSignal {
		return fmt.Errorf("brokertest: a signal of %d bytes is larger than wszero.MaxSignal (%d)", len(msg), wszero.MaxSignal)
	}
	return b.toOthers(node, delivery{kind: deliverSignal, from: b.id, data: append([]byte(nil), msg...)})
}

// GroupChanged queues, for this node's own receiving goroutine, a look at
// how many members group has here: from then on it receives the group's
// frames, or not. Frames queued before it are judged as before.
func (b *hubBroker) GroupChanged(group string) {
	b.mu.Lock()
	if b.started && !b.closed {
		b.queueLocked(delivery{kind: deliverGroup, group: group})
	}
	b.mu.Unlock()
}

// Close leaves the hub and stops receiving: what is queued for this node
// is dropped, as a broker's connection drops what it had not handed over.
// What this node published is already queued for the others.
func (b *hubBroker) Close(ctx context.Context) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	b.inbox = nil
	started := b.started
	b.mu.Unlock()
	if !started {
		return nil
	}
	b.hub.mu.Lock()
	if b.hub.nodes[b.id] == b {
		delete(b.hub.nodes, b.id)
	}
	b.hub.mu.Unlock()
	close(b.done)
	select {
	case <-b.ended:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("brokertest: the node's last delivery did not return: %w", ctx.Err())
	}
}

// toOthers queues d for node, or for every other node when node is "".
func (b *hubBroker) toOthers(node string, d delivery) error {
	b.mu.Lock()
	closed, started := b.closed, b.started
	b.mu.Unlock()
	switch {
	case closed:
		return errClosed
	case !started:
		return errors.New("brokertest: the broker has not been started (wszero.WithBroker starts it)")
	}
	b.hub.mu.Lock()
	var to []*hubBroker
	if node != "" {
		if o := b.hub.nodes[node]; o != nil && o != b {
			to = append(to, o)
		}
	} else {
		for _, o := range b.hub.nodes {
			if o != b {
				to = append(to, o)
			}
		}
	}
	// Queued with the hub's lock held, so that every node receives what
	// each node sent in the order it was sent.
	for _, o := range to {
		o.mu.Lock()
		if !o.closed {
			o.queueLocked(d)
		}
		o.mu.Unlock()
	}
	b.hub.mu.Unlock()
	return nil
}

// queueLocked appends d to the inbox and wakes receive; b.mu is held.
func (b *hubBroker) queueLocked(d delivery) {
	b.inbox = append(b.inbox, d)
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// receive hands the node what it is sent, in order, until Close.
func (b *hubBroker) receive() {
	defer close(b.ended)
	for {
		select {
		case <-b.wake:
		case <-b.done:
			return
		}
		b.mu.Lock()
		batch := b.inbox
		b.inbox = nil
		b.mu.Unlock()
		for _, d := range batch {
			select {
			case <-b.done:
				return
			default:
			}
			b.handle(d)
		}
	}
}

// handle hands one delivery to the node.
func (b *hubBroker) handle(d delivery) {
	switch d.kind {
	case deliverGroup:
		if b.node.Members(d.group) > 0 {
			b.subs[d.group] = true
		} else {
			delete(b.subs, d.group)
		}
	case deliverSignal:
		b.node.Signal(d.from, d.data)
	case deliverFrame:
		if d.to.Client == "" && d.to.Group != "" && !b.subs[d.to.Group] {
			return // not subscribed: a broker would not have routed it here
		}
		b.node.Deliver(d.to, d.data)
	}
}
