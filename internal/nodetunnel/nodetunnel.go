// Package nodetunnel carries byte streams (tunnels) between the nodes of a
// wszero cluster over the nodes' signals (wszero.Broker.Signal), so that
// every broker gives a client that reconnects to another node the resume
// of its session: that node relays the client's bytes, through a tunnel,
// to the node that holds the session. The protocol needs of the transport
// only what a broker's signals promise: what one node sends reaches each
// other node in order, unchanged and once, or is lost.
//
// # The protocol
//
// Each message starts with a header: its kind, which end sent it (the one
// that opened the tunnel, or the one that accepted it), the tunnel's
// number (the opener's, unique among its tunnels) and a sequence number,
// one count per direction that every kind shares. Then comes its body.
//
// The opener's first message (number 0) asks to open: its body is the
// opener's window and keepalive interval, then the hello. The other node
// answers with its own message number 0: an acceptance, with its window
// and interval, or a refusal, with its words. An opener that gives up
// waiting for the answer (its context ended) says so, and a node that
// accepted the tunnel too late closes it at once.
//
// Then data, acknowledgements, keepalives and an end marker flow both
// ways. A receiver that finds a number missing (the transport lost a
// message) breaks the tunnel instead of delivering bytes out of order or
// with a hole: Read and Write return an error wrapping ErrTunnelBroken,
// and the other end is told. The end marker makes the other end's Read
// return io.EOF after the bytes written before it.
//
// A tunnel's memory is bounded by its window: the receiver acknowledges
// what it has read, and a Write waits (until its deadline) while the other
// end holds a window's worth unread, like TCP. An idle tunnel sends a
// keepalive every interval, and breaks when the other end has said nothing
// for three of its intervals. Close closes every tunnel: the other ends
// read io.EOF at once.
package nodetunnel

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// Defaults of Config.
const (
	DefaultWindow    = 256 << 10       // DefaultWindow is how many bytes a tunnel carries ahead of its reader.
	DefaultKeepalive = 5 * time.Second // DefaultKeepalive is how often an idle tunnel says it is still there.

	// MinWindow is the smallest window a Config may set.
	MinWindow = 4 << 10
	// MaxHello is the size of the largest hello that Open carries.
	MaxHello = maxChunk
	// MaxMessage is the size of the largest message that Tunnels passes
	// to Config.Send.
	MaxMessage = headerLen + endInfoLen + maxChunk
)

const (
	maxChunk   = 64 << 10 // the most bytes of the stream in one message
	msgCost    = 64       // what each data message costs of the window besides its bytes
	misses     = 3        // keepalive intervals of silence after which a tunnel is given up
	maxWindow  = 1 << 30
	headerLen  = 1 + 1 + 8 + 8 // kind, side, tunnel, sequence number
	endInfoLen = 4 + 4         // window and keepalive, in an opening and its acceptance
)

// Kinds of message, their first byte.
const (
	kindOpen   = 'o' // the opener's window, keepalive and hello
	kindAccept = 'k' // the acceptor's window and keepalive
	kindRefuse = 'r' // why the acceptor refuses
	kindData   = 'd' // bytes of the stream
	kindAck    = 'a' // the credit the receiver has freed so far (8 bytes)
	kindPing   = 'p' // nothing to say, but still here
	kindEnd    = 'e' // the end: empty when the sender closed, else why it broke
	kindCancel = 'c' // the opener gave up before it had the answer
)

// Which end sent a message, its second byte.
const (
	sideOpener   = 'O'
	sideAcceptor = 'A'
)

// ErrNoNode is wrapped by the error of Open when the node asked for is not
// known to run, or does not answer at all.
var ErrNoNode = errors.New("wszero: no node with that ID runs")

// ErrTunnelBroken is wrapped by the errors of a tunnel's Read and Write
// once some of its bytes cannot arrive: the transport lost a message, or
// the other end went silent for longer than its keepalive allows. The
// tunnel delivers every byte before that, in order, and none after.
var ErrTunnelBroken = errors.New("wszero: the tunnel to another node broke")

// ErrClosed is returned by Open once Close has been called, and wrapped
// by the errors of the tunnels that Close closed.
var ErrClosed = errors.New("wszero: the node's tunnels are closed")

// RefusedError is the error of Open when the node reached refuses the
// tunnel: its Config.Accept returned why.
type RefusedError struct {
	Node   string // the node that refused
	Reason string // its words, as Accept returned them
}

// Error returns the node's words, after saying which node refused.
func (e *RefusedError) Error() string {
	return fmt.Sprintf("wszero: node %s refused the tunnel: %s", e.Node, e.Reason)
}

// errClosed is what a tunnel's Read and Write return on this side once
// Close has closed it.
var errClosed = fmt.Errorf("%w: %w", ErrClosed, net.ErrClosed)

// Config is what Tunnels needs of the node it serves.
type Config struct {
	// Node is this node's ID.
	Node string
	// Send hands msg, at most MaxMessage bytes, to node's Receive. What
	// one node sends must reach each other node in order, unchanged and
	// once, or be lost. Send must return at once; msg is not used again
	// by Tunnels.
	Send func(node string, msg []byte) error
	// Knows reports whether node is known to run: Open fails at once with
	// ErrNoNode when it does not. Nil knows every node.
	Knows func(node string) bool
	// Accept answers a tunnel that the node from opens with hello: serve
	// takes the tunnel, or refused says why not. Once Accept has returned
	// a serve, Tunnels calls it, on a goroutine of its own, even when the
	// tunnel ends first (its Read and Write then fail). Accept runs on
	// Receive's goroutine and must return at once; hello is its own.
	// Nil refuses every tunnel.
	Accept func(from string, hello []byte) (serve func(net.Conn), refused string)
	// Log, when set, is told of tunnels that break: a message and its
	// key-value pairs, as for slog. It is not throttled here.
	Log func(msg string, args ...any)

	// Window is how many bytes a tunnel carries ahead of the reader at
	// this end (DefaultWindow; at least MinWindow): a Write at the other
	// end waits while that many are sent and not yet read. Each message
	// counts 64 bytes besides what it carries, so that many small writes
	// are bounded too. Nodes may differ.
	Window int
	// Keepalive is how often an idle tunnel tells the other end that it
	// is still there (DefaultKeepalive). A tunnel whose other end has
	// said nothing for three of that end's intervals breaks. Nodes may
	// differ.
	Keepalive time.Duration
}

// Tunnels opens and accepts a node's tunnels to other nodes. Its methods
// are safe to call from any goroutine.
type Tunnels struct {
	cfg    Config
	nextID uint64 // the number of the next tunnel this node opens; under mu

	mu      sync.Mutex
	tunnels map[key]*tunnel // open or opening, for Receive, keepalives and Close
	closed  bool
	looping bool          // keepaliveLoop runs
	stop    chan struct{} // closed by Close: keepaliveLoop ends
	wg      sync.WaitGroup
}

// key names a tunnel among a node's: the node at its other end, the
// opener's number for it, and whether this node opened it.
type key struct {
	node string
	id   uint64
	mine bool
}

// New returns the tunnels of the node that cfg describes. It panics when
// cfg has no Send, or a window or keepalive out of range.
func New(cfg Config) *Tunnels {
	switch {
	case cfg.Send == nil:
		panic("nodetunnel.New: the Config has no Send")
	case cfg.Window == 0:
		cfg.Window = DefaultWindow
	case cfg.Window < MinWindow || cfg.Window > maxWindow:
		panic(fmt.Sprintf("nodetunnel.New: a window of %d bytes; it must be %d to %d", cfg.Window, MinWindow, maxWindow))
	}
	switch {
	case cfg.Keepalive == 0:
		cfg.Keepalive = DefaultKeepalive
	case cfg.Keepalive < time.Millisecond:
		panic(fmt.Sprintf("nodetunnel.New: a keepalive of %v; it must be at least 1ms", cfg.Keepalive))
	}
	var n [8]byte
	_, _ = rand.Read(n[:])
	return &Tunnels{
		cfg:     cfg,
		nextID:  binary.BigEndian.Uint64(n[:]), // unlike the numbers of a node that had this ID before
		tunnels: map[key]*tunnel{},
		stop:    make(chan struct{}),
	}
}

// Open opens a byte stream to node, whose Config.Accept receives hello
// (at most MaxHello bytes). It fails at once with an error wrapping
// ErrNoNode when Config.Knows does not know the node, with a
// *RefusedError when the node refuses, with ErrClosed after Close, and
// with ctx's error when ctx ends first: the node is then told to close the
// tunnel if it accepted it. A node that does not answer for three
// keepalive intervals is taken to be gone (ErrNoNode).
//
// The stream carries every byte once, in order, or breaks: its Read and
// Write then return an error wrapping ErrTunnelBroken, after the bytes
// that came before. Closing either end closes the other, whose Read
// returns io.EOF after the bytes written before; so does Close. An end
// whose node vanishes without closing breaks the other within four
// keepalive intervals.
//
// The stream supports one reader and one writer at once, and Close from
// any goroutine. Read and Write deadlines work as on a TCP connection: a
// Write waits while the window is full, that is while the other end does
// not read.
func (m *Tunnels) Open(ctx context.Context, node string, hello []byte) (net.Conn, error) {
	switch {
	case len(hello) > MaxHello:
		return nil, fmt.Errorf("wszero: a tunnel's hello of %d bytes is over %d", len(hello), MaxHello)
	case node == "" || node == m.cfg.Node:
		return nil, fmt.Errorf("wszero: cannot open a tunnel to %.60q: name another node", node)
	case m.cfg.Knows != nil && !m.cfg.Knows(node):
		return nil, fmt.Errorf("%w: node %.60q is not in the cluster (it stopped, or never ran)", ErrNoNode, node)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("wszero: cannot open a tunnel to node %s: %w", node, err)
	}
	m.mu.Lock()
	id := m.nextID
	m.nextID++
	m.mu.Unlock()
	t := m.newTunnel(key{node: node, id: id, mine: true})
	if !m.register(t) {
		return nil, ErrClosed
	}
	body := appendEnd(make([]byte, 0, endInfoLen+len(hello)), m.cfg.Window, m.cfg.Keepalive)
	if err := t.send(kindOpen, append(body, hello...)); err != nil {
		t.finish(err, err, 0, "")
		return nil, fmt.Errorf("wszero: cannot open a tunnel to node %s: %w", node, err)
	}
	select {
	case <-t.answered:
		return t, nil
	case <-t.done:
	case <-ctx.Done():
		err := fmt.Errorf("wszero: node %s did not answer the tunnel in time: %w", node, ctx.Err())
		t.finish(err, err, kindCancel, "") // in case it accepts late
		return nil, err
	}
	if isClosed(t.answered) {
		return t, nil // it was accepted, then ended: Read says why
	}
	t.mu.Lock()
	err := t.rerr
	t.mu.Unlock()
	return nil, err
}

// Receive takes in a message that the node from passed to its
// Config.Send. It never waits for a tunnel's reader, and keeps no
// reference to msg; it calls Config.Accept for a new tunnel, and
// Config.Send for acknowledgements and answers.
func (m *Tunnels) Receive(from string, msg []byte) {
	if len(msg) < headerLen || from == "" {
		return
	}
	kind, side := msg[0], msg[1]
	id, seq := binary.BigEndian.Uint64(msg[2:10]), binary.BigEndian.Uint64(msg[10:headerLen])
	body := msg[headerLen:]
	k := key{node: from, id: id}
	switch side {
	case sideOpener:
		if kind == kindOpen {
			m.accept(k, seq, body)
			return
		}
	case sideAcceptor:
		k.mine = true
	default:
		return
	}
	m.mu.Lock()
	t := m.tunnels[k]
	m.mu.Unlock()
	if t != nil { // else ended and forgotten here, or never known
		t.receive(kind, seq, body)
	}
}

// accept answers a request to open a tunnel to this node.
func (m *Tunnels) accept(k key, seq uint64, body []byte) {
	if seq != 0 {
		return // not a request: a sequence starts at 0
	}
	refuse := func(why string) {
		_ = m.cfg.Send(k.node, appendHeader(nil, kindRefuse, sideAcceptor, k.id, 0, []byte(why[:min(len(why), maxChunk)])))
	}
	window, keepalive, ok := parseEnd(body)
	if !ok {
		refuse("the tunnel's request has no window and keepalive: is the node that opens it of another version?")
		return
	}
	m.mu.Lock()
	closed, doubled := m.closed, m.tunnels[k] != nil
	m.mu.Unlock()
	switch {
	case doubled:
		return
	case closed:
		refuse("the node is shutting down")
		return
	}
	var serve func(net.Conn)
	why := "the node takes no tunnels"
	if m.cfg.Accept != nil {
		serve, why = m.cfg.Accept(k.node, bytes.Clone(body[endInfoLen:]))
	}
	if serve == nil {
		if why == "" {
			why = "the node refused the tunnel"
		}
		refuse(why)
		return
	}
	t := m.newTunnel(k)
	t.rseq = 1 // the request was message 0
	t.connect(window, keepalive)
	if !m.register(t) {
		t.finish(errClosed, errClosed, 0, "")
		refuse("the node is shutting down")
		go serve(t)
		return
	}
	if err := t.send(kindAccept, appendEnd(nil, m.cfg.Window, m.cfg.Keepalive)); err != nil {
		t.fail(err)
	}
	go serve(t)
}

// register keeps t until it ends, unless Close has begun, and makes sure
// that the keepalives run.
func (m *Tunnels) register(t *tunnel) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return false
	}
	m.tunnels[t.key] = t
	if !m.looping {
		m.looping = true
		m.wg.Add(1)
		go m.keepaliveLoop()
	}
	return true
}

// forget drops t, which has ended.
func (m *Tunnels) forget(t *tunnel) {
	m.mu.Lock()
	if m.tunnels[t.key] == t {
		delete(m.tunnels, t.key)
	}
	m.mu.Unlock()
}

// Close closes every tunnel, which the other ends read as io.EOF (a
// tunnel being opened is given up, and Open fails with ErrClosed), and
// refuses new ones. It waits for the keepalives to stop.
func (m *Tunnels) Close() {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		m.wg.Wait()
		return
	}
	m.closed = true
	all := make([]*tunnel, 0, len(m.tunnels))
	for _, t := range m.tunnels {
		all = append(all, t)
	}
	close(m.stop)
	m.mu.Unlock()
	for _, t := range all {
		t.closeWith(errClosed)
	}
	m.wg.Wait()
}

// keepaliveLoop pings idle tunnels and breaks silent ones, every keepalive
// interval, while there are tunnels and until Close.
func (m *Tunnels) keepaliveLoop() {
	defer m.wg.Done()
	tick := time.NewTicker(m.cfg.Keepalive)
	defer tick.Stop()
	var ts []*tunnel
	for {
		select {
		case <-tick.C:
		case <-m.stop:
			return
		}
		m.mu.Lock()
		if len(m.tunnels) == 0 {
			m.looping = false // register starts another
			m.mu.Unlock()
			return
		}
		ts = ts[:0]
		for _, t := range m.tunnels {
			ts = append(ts, t)
		}
		m.mu.Unlock()
		for _, t := range ts {
			t.keepalive()
		}
		clear(ts)
	}
}

// logBroken logs a tunnel that broke.
func (m *Tunnels) logBroken(node string, err error) {
	if m.cfg.Log != nil {
		m.cfg.Log("wszero: a tunnel to another node broke", "node", node, "err", err)
	}
}

// appendHeader appends a message's header and body to b.
func appendHeader(b []byte, kind, side byte, id, seq uint64, body []byte) []byte {
	b = append(b, kind, side)
	b = binary.BigEndian.AppendUint64(b, id)
	b = binary.BigEndian.AppendUint64(b, seq)
	return append(b, body...)
}

// appendEnd appends what an opening or an acceptance says of its sender's
// end: its window and its keepalive interval in milliseconds.
func appendEnd(b []byte, window int, keepalive time.Duration) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(window))
	return binary.BigEndian.AppendUint32(b, uint32(min(max(1, keepalive.Milliseconds()), 1<<31)))
}

// parseEnd reads what appendEnd wrote, and reports whether it is well
// formed.
func parseEnd(b []byte) (window int, keepalive time.Duration, ok bool) {
	if len(b) < endInfoLen {
		return 0, 0, false
	}
	window = int(binary.BigEndian.Uint32(b))
	keepalive = time.Duration(binary.BigEndian.Uint32(b[4:])) * time.Millisecond
	return window, keepalive, window >= MinWindow && window <= maxWindow && keepalive > 0
}
