package nodetunnel

import (
	"bytes"
	"net"
	"sync"
	"testing"
)

// memNet is an in-memory transport between nodes, with a broker's
// contract: what one node sends reaches the other in order, unchanged and
// once, on the receiver's one delivery goroutine, or is lost. A test can
// lose messages on purpose, cut a node off, or make sending fail.
type memNet struct {
	t     testing.TB
	mu    sync.Mutex
	nodes map[string]*memNode
}

// memNode is one node of a memNet: its Tunnels, its delivery queue, and
// a fake server behind Config.Accept that hands the tunnels it accepts to
// the test.
type memNode struct {
	id  string
	net *memNet
	tun *Tunnels

	mu     sync.Mutex
	queue  []memMsg
	lose   func(from string, msg []byte) bool // messages to this node it says true of are lost
	cut    bool                               // cut off: what it sends and what is sent to it are lost
	failed error                              // what Send returns, when set
	refuse string                             // Accept refuses with these words, when set
	wait   chan struct{}                      // Accept waits until it is closed, when set
	asked  chan struct{}                      // Accept says it was called here first, when set

	more     chan struct{}
	stop     chan struct{}
	stopped  chan struct{}
	accepted chan accepted
}

// memMsg is a message on its way.
type memMsg struct {
	from string
	data []byte
}

// accepted is a tunnel that a memNode accepted, and its hello.
type accepted struct {
	from  string
	hello []byte
	conn  net.Conn
}

func newMemNet(t testing.TB) *memNet {
	return &memNet{t: t, nodes: map[string]*memNode{}}
}

// add starts a node on the transport, with cfg (its Node, Send, Knows and
// Accept are set here); it stops when the test ends.
func (n *memNet) add(id string, cfg Config) *memNode {
	node := &memNode{
		id:       id,
		net:      n,
		more:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		stopped:  make(chan struct{}),
		accepted: make(chan accepted, 64),
	}
	cfg.Node = id
	cfg.Send = func(to string, msg []byte) error { return n.send(id, to, msg) }
	cfg.Knows = n.knows
	cfg.Accept = node.accept
	if cfg.Log == nil {
		cfg.Log = func(msg string, args ...any) { n.t.Logf("node %s: %s %v", id, msg, args) }
	}
	node.tun = New(cfg)
	n.mu.Lock()
	n.nodes[id] = node
	n.mu.Unlock()
	go node.deliver()
	n.t.Cleanup(func() {
		node.tun.Close()
		close(node.stop)
		<-node.stopped
	})
	return node
}

// knows is every node's Config.Knows: a node is known once added.
func (n *memNet) knows(id string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.nodes[id] != nil
}

// send queues msg from one node for another, or loses it.
func (n *memNet) send(from, to string, msg []byte) error {
	if len(msg) > MaxMessage {
		n.t.Errorf("node %s sent a message of %d bytes, over MaxMessage (%d)", from, len(msg), MaxMessage)
	}
	n.mu.Lock()
	sender, receiver := n.nodes[from], n.nodes[to]
	n.mu.Unlock()
	sender.mu.Lock()
	cut, failed := sender.cut, sender.failed
	sender.mu.Unlock()
	if failed != nil {
		return failed
	}
	if receiver == nil || cut {
		return nil // lost
	}
	receiver.mu.Lock()
	if receiver.cut || receiver.lose != nil && receiver.lose(from, msg) {
		receiver.mu.Unlock()
		return nil
	}
	receiver.queue = append(receiver.queue, memMsg{from, msg})
	receiver.mu.Unlock()
	select {
	case receiver.more <- struct{}{}:
	default:
	}
	return nil
}

// deliver hands the node what is sent to it, in order, until the test
// ends.
func (node *memNode) deliver() {
	defer close(node.stopped)
	for {
		select {
		case <-node.more:
		case <-node.stop:
			return
		}
		for {
			node.mu.Lock()
			if len(node.queue) == 0 {
				node.mu.Unlock()
				break
			}
			m := node.queue[0]
			node.queue[0] = memMsg{}
			node.queue = node.queue[1:]
			node.mu.Unlock()
			node.tun.Receive(m.from, m.data)
			clear(m.data) // Receive keeps no reference to the message
		}
	}
}

// accept is the node's Config.Accept.
func (node *memNode) accept(from string, hello []byte) (func(net.Conn), string) {
	node.mu.Lock()
	wait, refuse, asked := node.wait, node.refuse, node.asked
	node.mu.Unlock()
	if asked != nil {
		asked <- struct{}{}
	}
	if wait != nil {
		<-wait
	}
	if refuse != "" {
		return nil, refuse
	}
	return func(c net.Conn) { node.accepted <- accepted{from, hello, c} }, ""
}

// set changes the node's state under its lock.
func (node *memNode) set(f func(node *memNode)) {
	node.mu.Lock()
	f(node)
	node.mu.Unlock()
}

// loseOnce makes the transport lose the first message to node of the
// given kind whose body holds part; it returns a channel closed once it
// has.
func (node *memNode) loseOnce(kind byte, part string) <-chan struct{} {
	return node.loseRun(kind, part, 0, 1)
}

// loseRun makes the transport lose count messages of the given kind to
// node, from the first whose body holds part after skip such messages have
// passed (other kinds pass); it returns a channel closed once the first
// is lost.
func (node *memNode) loseRun(kind byte, part string, skip, count int) <-chan struct{} {
	lost := make(chan struct{})
	started := false
	node.set(func(node *memNode) {
		node.lose = func(_ string, msg []byte) bool {
			switch {
			case msg[0] != kind || count == 0:
				return false
			case !started && !bytes.Contains(msg[headerLen:], []byte(part)):
				return false
			case !started && skip > 0:
				skip--
				return false
			case !started:
				started = true
				close(lost)
			}
			count--
			return true
		}
	})
	return lost
}
