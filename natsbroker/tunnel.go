package natsbroker

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/wszero/wszero"
)

// Headers of a tunnel's opening request and its reply.
const (
	headerTunnel  = "Wszero-Tunnel"  // the inbox where the sender of the request or reply receives the tunnel's data
	headerRefused = "Wszero-Refused" // the reply is a refusal; its data is why
	headerWindow  = "Wszero-Window"  // how many bytes the sender of the request or reply takes ahead of its reader
	headerAlive   = "Wszero-Alive"   // the sender's keepalive interval, in milliseconds
	headerCancel  = "Wszero-Cancel"  // the opener gave up: close the tunnel whose other end is at Wszero-Tunnel
)

// Kinds of a tunnel's messages. Each message's data starts with its kind
// and its sequence number (8 bytes, big-endian), one count per direction
// that every kind shares.
const (
	kindData = 'd' // bytes of the stream
	kindAck  = 'a' // the credit the receiver has freed so far (8 bytes)
	kindPing = 'p' // nothing to say, but still here
	kindEnd  = 'e' // the end: empty when the sender closed, else why it broke

	prefixLen = 9
)

// Defaults of the tunnel options.
const (
	DefaultTunnelWindow    = 256 << 10       // DefaultTunnelWindow is how many bytes a tunnel carries ahead of its reader.
	DefaultTunnelKeepalive = 5 * time.Second // DefaultTunnelKeepalive is how often an idle tunnel says it is still there.

	maxChunk      = 64 << 10 // the most bytes of the stream in one message
	msgCost       = 64       // what each data message costs of the window besides its bytes
	tunnelMisses  = 3        // keepalive intervals of silence after which a tunnel is given up
	minWindowSize = 4 << 10
)

// ErrNoNode is wrapped by the error of Tunnel when no node with the ID
// asked for is connected to NATS: it stopped, or never ran.
var ErrNoNode = errors.New("natsbroker: no node with that ID runs")

// ErrTunnelBroken is wrapped by the errors of a tunnel's Read and Write
// once some of its bytes cannot arrive: NATS lost a message (during a
// reconnection, or because a subscriber fell behind), or the other end
// went silent for longer than the keepalive allows. The tunnel delivers
// every byte before that, in order, and none after.
var ErrTunnelBroken = errors.New("natsbroker: the tunnel broke")

// RefusedError is the error of Tunnel when the node reached refuses the
// tunnel: its Node.AcceptTunnel returned why.
type RefusedError struct {
	Node   string // the node that refused
	Reason string // its words, as AcceptTunnel returned them
}

// Error returns the node's words, after saying which node refused.
func (e *RefusedError) Error() string {
	return fmt.Sprintf("natsbroker: node %s refused the tunnel: %s", e.Node, e.Reason)
}

// errBrokerClosed is what a tunnel's Read and Write return on this side
// once its broker is closed.
var errBrokerClosed = fmt.Errorf("%w: %w", ErrClosed, net.ErrClosed)

// errPeerClosed is what Write returns once the other end has closed.
var errPeerClosed = fmt.Errorf("natsbroker: the tunnel's other end is closed: %w", io.ErrClosedPipe)

// WithTunnelWindow sets how many bytes a tunnel carries ahead of the
// reader at its other end (DefaultTunnelWindow, at least 4 KiB): a Write
// waits while that many are sent and not yet read, so each direction of a
// tunnel holds at most this much in memory. A wider window carries more
// over links with a long round trip. Each message counts 64 bytes besides
// what it carries, so that many small writes are bounded too. Each end of
// a tunnel receives within its own broker's window: nodes may differ.
func WithTunnelWindow(bytes int) Option {
	if bytes < minWindowSize {
		panic(fmt.Sprintf("natsbroker.WithTunnelWindow(%d): the window must be at least %d bytes", bytes, minWindowSize))
	}
	return func(o *options) { o.tunnelWindow = bytes }
}

// WithTunnelKeepalive sets how often an idle tunnel tells its other end
// that it is still there (DefaultTunnelKeepalive). A tunnel whose other
// end has said nothing for three of that end's intervals breaks: a node
// that vanishes (a crash, a network cut) ends its tunnels on other nodes
// within three of its intervals and two of theirs at most, 20 s when both
// keep the default. Nodes may use different intervals.
func WithTunnelKeepalive(d time.Duration) Option {
	if d <= 0 {
		panic(fmt.Sprintf("natsbroker.WithTunnelKeepalive(%v): the interval must be more than 0", d))
	}
	return func(o *options) { o.tunnelKeepalive = d }
}

// Tunnel opens a byte stream to node, which receives hello first, through
// its wszero.Node.AcceptTunnel: it implements wszero.Tunneler. It fails
// with a *RefusedError when the node refuses, with an error wrapping
// ErrNoNode when no node with that ID is connected to NATS, and with ctx's
// error when ctx ends first.
//
// The stream carries every byte once, in order, or breaks: its Read and
// Write then return an error wrapping ErrTunnelBroken, after the bytes
// that came before. Closing either end closes the other, whose Read returns
// io.EOF after the bytes written before; so does closing either end's
// broker. An end whose node vanishes without closing breaks the other
// within four keepalive intervals (WithTunnelKeepalive), 20 s by default.
//
// The stream supports one reader and one writer at once, and Close from
// any goroutine. Read and Write deadlines work as on a TCP connection: a
// Write waits while the window (WithTunnelWindow) is full, that is while
// the other end does not read.
func (b *Broker) Tunnel(ctx context.Context, node string, hello []byte) (net.Conn, error) {
	b.mu.Lock()
	started := b.started
	b.mu.Unlock()
	switch {
	case b.closing.Load():
		return nil, ErrClosed
	case !started:
		return nil, errors.New("natsbroker: the broker is not started: tunnels need the wszero server that owns it")
	case wszero.NodeOf(node+".x") != node:
		return nil, fmt.Errorf("natsbroker: %.60q is not a node ID", node)
	case node == b.nodeID:
		return b.tunnelHere(hello)
	case !b.nc.IsConnected():
		return nil, fmt.Errorf("natsbroker: cannot open a tunnel to node %s: NATS is away", node)
	}
	t, err := b.newTunnel(node)
	if err != nil {
		return nil, err
	}
	req := &nats.Msg{Subject: b.subjectTunnel(node), Header: nats.Header{}, Data: hello}
	req.Header.Set(headerNode, b.nodeID)
	b.setTunnelHeaders(req.Header, t)
	resp, err := b.nc.RequestMsgWithContext(ctx, req)
	if err != nil {
		t.teardown()
		switch {
		case errors.Is(err, nats.ErrNoResponders):
			return nil, fmt.Errorf("%w: nothing answers for node %s on NATS; it stopped, or never ran", ErrNoNode, node)
		case ctx.Err() != nil:
			b.cancelTunnel(node, t.inbox)
			return nil, fmt.Errorf("natsbroker: node %s did not answer the tunnel in time: %w", node, ctx.Err())
		}
		return nil, fmt.Errorf("natsbroker: cannot open a tunnel to node %s: %w", node, err)
	}
	if resp.Header.Get(headerRefused) != "" {
		t.teardown()
		return nil, &RefusedError{Node: node, Reason: string(resp.Data)}
	}
	peer, ok := b.tunnelHeaders(resp.Header)
	if !ok {
		t.teardown()
		return nil, fmt.Errorf("natsbroker: node %s answered the tunnel without its inbox and window: is it a natsbroker of another version?", node)
	}
	t.connect(peer)
	if !b.addTunnel(t) {
		t.closeWith(errBrokerClosed)
		return nil, ErrClosed
	}
	t.sendAckIfDue() // for data that came with the reply
	return t, nil
}

// cancelTunnel tells node that this one gave up opening the tunnel whose
// inbox is given, in case node accepted it too late. NATS delivers it after
// the request, since both come from one connection to one subscription.
func (b *Broker) cancelTunnel(node, inbox string) {
	m := &nats.Msg{Subject: b.subjectTunnel(node), Header: nats.Header{}}
	m.Header.Set(headerNode, b.nodeID)
	m.Header.Set(headerTunnel, inbox)
	m.Header.Set(headerCancel, "1")
	_ = b.nc.PublishMsg(m)
}

// acceptTunnel answers a request to open a tunnel to this node, or closes
// a tunnel whose opener gave up.
func (b *Broker) acceptTunnel(m *nats.Msg) {
	from := m.Header.Get(headerNode)
	peer, ok := b.tunnelHeaders(m.Header)
	if m.Header.Get(headerCancel) != "" {
		b.tunnelCanceled(from, m.Header.Get(headerTunnel))
		return
	}
	if m.Reply == "" || from == "" {
		return
	}
	refuse := func(why string) {
		r := &nats.Msg{Subject: m.Reply, Header: nats.Header{}, Data: []byte(why)}
		r.Header.Set(headerRefused, "1")
		_ = b.nc.PublishMsg(r)
	}
	if !ok {
		refuse("the tunnel's request has no inbox and window: is the node that opens it a natsbroker of another version?")
		return
	}
	if b.closing.Load() {
		refuse("the node is shutting down")
		return
	}
	// Subscribed first: once the node accepts, serve owns the tunnel and
	// must have it, even closed.
	t, err := b.newTunnel(from)
	if err != nil {
		b.logThrottled("tunnel", "natsbroker: a tunnel from another node was refused", "node", from, "err", err)
		refuse("the node cannot receive a tunnel now")
		return
	}
	serve, why := b.node.AcceptTunnel(m.Data)
	if serve == nil {
		t.teardown()
		if why == "" {
			why = "the node refused the tunnel"
		}
		refuse(why)
		return
	}
	t.connect(peer)
	if !b.addTunnel(t) {
		t.finish(errBrokerClosed, errBrokerClosed, "", false)
		refuse("the node is shutting down")
		go serve(t)
		return
	}
	r := &nats.Msg{Subject: m.Reply, Header: nats.Header{}}
	b.setTunnelHeaders(r.Header, t)
	if err := b.nc.PublishMsg(r); err != nil {
		t.fail(fmt.Errorf("natsbroker: cannot answer a tunnel: %w", err))
	}
	go serve(t)
}

// tunnelCanceled closes the tunnel whose other end, at node, is at inbox:
// its opener gave up waiting for the answer.
func (b *Broker) tunnelCanceled(node, inbox string) {
	var found *tunnel
	b.tunMu.Lock()
	for e := range b.tunnels {
		if t, ok := e.(*tunnel); ok && t.node == node && t.peerInbox() == inbox {
			found = t
			break
		}
	}
	b.tunMu.Unlock()
	if found != nil {
		err := fmt.Errorf("natsbroker: node %s gave up opening the tunnel before it was accepted: %w", node, io.ErrUnexpectedEOF)
		found.finish(err, err, "", false)
	}
}

// peerEnd is what a tunnel's request or reply says of its sender's end.
type peerEnd struct {
	inbox     string        // where it receives
	window    int           // how much it takes ahead of its reader
	keepalive time.Duration // how often it says it is still there
}

// setTunnelHeaders describes this end of t in a tunnel's request or reply.
func (b *Broker) setTunnelHeaders(h nats.Header, t *tunnel) {
	h.Set(headerTunnel, t.inbox)
	h.Set(headerWindow, strconv.Itoa(b.opts.tunnelWindow))
	h.Set(headerAlive, strconv.FormatInt(max(1, b.opts.tunnelKeepalive.Milliseconds()), 10))
}

// tunnelHeaders returns what a tunnel's request or reply says of the
// other end, and whether it is well formed. A missing keepalive is taken
// to be this broker's.
func (b *Broker) tunnelHeaders(h nats.Header) (peerEnd, bool) {
	e := peerEnd{inbox: h.Get(headerTunnel), keepalive: b.opts.tunnelKeepalive}
	window, err := strconv.Atoi(h.Get(headerWindow))
	if ms, err := strconv.ParseInt(h.Get(headerAlive), 10, 64); err == nil && ms > 0 {
		e.keepalive = time.Duration(ms) * time.Millisecond
	}
	e.window = window
	return e, e.inbox != "" && err == nil && window >= minWindowSize
}

// tunnelHere opens a tunnel from this node to itself, in memory: NATS
// would not echo the node's own messages.
func (b *Broker) tunnelHere(hello []byte) (net.Conn, error) {
	serve, why := b.node.AcceptTunnel(hello)
	if serve == nil {
		if why == "" {
			why = "the node refused the tunnel"
		}
		return nil, &RefusedError{Node: b.nodeID, Reason: why}
	}
	here, there := net.Pipe()
	h := &pipeEnd{Conn: here, b: b}
	if !b.addTunnel(h) {
		here.Close()
		go serve(there) // it owns there, which reads io.EOF
		return nil, ErrClosed
	}
	go serve(there)
	return h, nil
}

// pipeEnd is the opening end of a tunnel from a node to itself; closing
// the broker closes it.
type pipeEnd struct {
	net.Conn
	b *Broker
}

func (p *pipeEnd) Close() error {
	p.b.removeTunnel(p)
	return p.Conn.Close()
}

func (p *pipeEnd) closeWith(error) { p.Close() }

// endpoint is what the broker keeps of each open tunnel.
type endpoint interface{ closeWith(err error) }

// addTunnel keeps t until it ends, unless the broker is closing.
func (b *Broker) addTunnel(t endpoint) bool {
	b.tunMu.Lock()
	defer b.tunMu.Unlock()
	if b.tunClosed {
		return false
	}
	b.tunnels[t] = struct{}{}
	if t, ok := t.(*tunnel); ok && t.isEnded() {
		delete(b.tunnels, t) // it broke before it was added: teardown has run
	}
	return true
}

func (b *Broker) removeTunnel(t endpoint) {
	b.tunMu.Lock()
	delete(b.tunnels, t)
	b.tunMu.Unlock()
}

// closeTunnels ends every tunnel, for Close: their other ends read io.EOF.
func (b *Broker) closeTunnels() {
	b.tunMu.Lock()
	b.tunClosed = true
	all := make([]endpoint, 0, len(b.tunnels))
	for t := range b.tunnels {
		all = append(all, t)
	}
	b.tunMu.Unlock()
	for _, t := range all {
		t.closeWith(errBrokerClosed)
	}
}

// keepaliveLoop pings idle tunnels and breaks silent ones, every keepalive
// interval, until Close.
func (b *Broker) keepaliveLoop() {
	defer b.wg.Done()
	tick := time.NewTicker(b.opts.tunnelKeepalive)
	defer tick.Stop()
	var ts []*tunnel
	for {
		select {
		case <-tick.C:
		case <-b.stop:
			return
		}
		ts = ts[:0]
		b.tunMu.Lock()
		for e := range b.tunnels {
			if t, ok := e.(*tunnel); ok {
				ts = append(ts, t)
			}
		}
		b.tunMu.Unlock()
		for _, t := range ts {
			t.keepalive()
		}
		clear(ts)
	}
}

func (b *Broker) subjectTunnel(node string) string { return b.opts.prefix + ".tun." + node }

// tunnel is one end of a tunnel between two nodes: a net.Conn.
type tunnel struct {
	b      *Broker
	node   string // the node at the other end
	inbox  string // where this end receives
	sub    *nats.Subscription
	window uint64 // of what this end receives

	rmu sync.Mutex // one Read at a time
	wmu sync.Mutex // one Write at a time

	mu        sync.Mutex
	peer      string // where the other end receives
	peerWin   uint64 // the other end's window
	buf       []byte // received and not read yet: buf[off:]
	off       int
	rseq      uint64 // the sequence number due next
	freed     uint64 // the credit of the window this end has freed (read, or messages taken in)
	ackedOut  uint64 // freed, as last told the other end
	spent     uint64 // the credit this end has spent of the other end's window
	ackedIn   uint64 // the credit the other end has freed
	ended     bool   // rerr and werr are set
	rerr      error  // what Read returns once buf is empty
	werr      error  // what Write returns
	closedErr error  // set by Close: what Read and Write return at once
	readable  chan struct{}
	writable  chan struct{}
	done      chan struct{} // closed once ended

	sendMu  sync.Mutex // sends are numbered in order
	seq     uint64     // the number of the next message sent
	sentEnd bool       // the end marker, or a message that NATS refused, was sent: nothing after it is of use
	hush    bool       // the tunnel has ended: send nothing more

	sentLately atomic.Bool  // something was sent since the last keepalive tick
	silence    atomic.Int32 // keepalive ticks since something was received
	misses     atomic.Int32 // how many ticks of silence break the tunnel

	rdl, wdl deadline
	once     sync.Once
}

// newTunnel makes this end of a tunnel to node and subscribes to its inbox.
func (b *Broker) newTunnel(node string) (*tunnel, error) {
	t := &tunnel{
		b:        b,
		node:     node,
		inbox:    b.nc.NewInbox(),
		window:   uint64(b.opts.tunnelWindow),
		readable: make(chan struct{}, 1),
		writable: make(chan struct{}, 1),
		done:     make(chan struct{}),
		rdl:      makeDeadline(),
		wdl:      makeDeadline(),
	}
	sub, err := b.nc.Subscribe(t.inbox, t.receive)
	if err != nil {
		return nil, fmt.Errorf("natsbroker: cannot subscribe to a tunnel's inbox: %w", err)
	}
	// An end that keeps to the window never has more pending; one that
	// does not loses messages here, and the tunnel breaks.
	msgs := b.opts.tunnelWindow/msgCost + 1024
	if err := sub.SetPendingLimits(msgs, 2*b.opts.tunnelWindow+msgs*(prefixLen+8)); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("natsbroker: cannot limit a tunnel's inbox: %w", err)
	}
	t.sub = sub
	return t, nil
}

// connect sets where the other end receives, its window and its
// keepalive; data may be sent from now on.
func (t *tunnel) connect(e peerEnd) {
	// Silent for three of the other end's intervals, counted in this
	// end's ticks, rounded up.
	own := t.b.opts.tunnelKeepalive
	t.misses.Store(int32(min((tunnelMisses*e.keepalive+own-1)/own, 1<<20)))
	t.mu.Lock()
	t.peer, t.peerWin = e.inbox, uint64(e.window)
	t.mu.Unlock()
}

func (t *tunnel) peerInbox() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.peer
}

func (t *tunnel) isEnded() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.ended
}

// receive takes in one message from the other end. It runs on the
// subscription's goroutine and never waits for a reader.
func (t *tunnel) receive(m *nats.Msg) {
	d := m.Data
	if len(d) < prefixLen {
		t.fail(fmt.Errorf("%w: a malformed message came", ErrTunnelBroken))
		return
	}
	kind, seq, body := d[0], binary.BigEndian.Uint64(d[1:prefixLen]), d[prefixLen:]
	t.silence.Store(0)
	t.mu.Lock()
	if t.ended {
		t.mu.Unlock()
		return
	}
	if seq != t.rseq {
		due := t.rseq
		t.mu.Unlock()
		t.fail(fmt.Errorf("%w: NATS lost %d messages from node %s (message %d came when %d was due)", ErrTunnelBroken, seq-due, t.node, seq, due))
		return
	}
	t.rseq++
	switch kind {
	case kindData:
		if uint64(len(t.buf)-t.off+len(body)) > t.window {
			t.mu.Unlock()
			t.fail(fmt.Errorf("%w: node %s sent more than the window", ErrTunnelBroken, t.node))
			return
		}
		if t.off > 0 && len(t.buf)+len(body) > cap(t.buf) {
			t.buf = t.buf[:copy(t.buf, t.buf[t.off:])]
			t.off = 0
		}
		t.buf = append(t.buf, body...)
		t.freed += msgCost // the message itself is gone
		due := t.ackDue()
		t.mu.Unlock()
		poke(t.readable)
		if due {
			t.sendAckIfDue()
		}
	case kindAck:
		if len(body) != 8 || binary.BigEndian.Uint64(body) > t.spent {
			t.mu.Unlock()
			t.fail(fmt.Errorf("%w: node %s sent a malformed acknowledgement", ErrTunnelBroken, t.node))
			return
		}
		t.ackedIn = max(t.ackedIn, binary.BigEndian.Uint64(body))
		t.mu.Unlock()
		poke(t.writable)
	case kindPing:
		t.mu.Unlock()
	case kindEnd:
		t.mu.Unlock()
		if len(body) == 0 {
			t.finish(io.EOF, errPeerClosed, "", false)
		} else {
			err := fmt.Errorf("%w: at node %s: %s", ErrTunnelBroken, t.node, body)
			t.finish(err, err, "", false)
		}
	default:
		t.mu.Unlock()
		t.fail(fmt.Errorf("%w: node %s sent a message of an unknown kind", ErrTunnelBroken, t.node))
	}
}

// ackDue reports whether a quarter of the window has been freed since the
// other end was last told. t.mu is held.
func (t *tunnel) ackDue() bool { return t.freed-t.ackedOut >= t.window/4 && t.peer != "" }

// sendAckIfDue tells the other end how much of the window is free, when
// a quarter of it has been freed since it was last told.
func (t *tunnel) sendAckIfDue() {
	t.mu.Lock()
	if !t.ackDue() {
		t.mu.Unlock()
		return
	}
	t.ackedOut = t.freed
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], t.freed)
	t.mu.Unlock()
	if err := t.send(kindAck, n[:]); err != nil && !errors.Is(err, net.ErrClosed) {
		t.fail(err)
	}
}

// Read reads bytes that the other end wrote, in order. Once the other end
// has closed, it returns io.EOF after them.
func (t *tunnel) Read(p []byte) (int, error) {
	t.rmu.Lock()
	defer t.rmu.Unlock()
	for {
		if isClosed(t.rdl.wait()) {
			return 0, os.ErrDeadlineExceeded
		}
		t.mu.Lock()
		if t.closedErr != nil {
			t.mu.Unlock()
			return 0, t.closedErr
		}
		if t.off < len(t.buf) && len(p) > 0 {
			n := copy(p, t.buf[t.off:])
			t.off += n
			if t.off == len(t.buf) {
				t.off, t.buf = 0, t.buf[:0]
				if cap(t.buf) > 4<<10 {
					t.buf = nil // an idle tunnel holds no buffer
				}
			}
			t.freed += uint64(n)
			due := t.ackDue()
			t.mu.Unlock()
			if due {
				t.sendAckIfDue()
			}
			return n, nil
		}
		if t.off == len(t.buf) && t.rerr != nil {
			err := t.rerr
			t.mu.Unlock()
			return 0, err
		}
		t.mu.Unlock()
		if len(p) == 0 {
			return 0, nil
		}
		select {
		case <-t.readable:
		case <-t.rdl.wait():
		case <-t.done:
		}
	}
}

// Write sends p to the other end, in chunks of at most 64 KiB. It waits
// while the other end's window is full, until the write deadline.
func (t *tunnel) Write(p []byte) (int, error) {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	written := 0
	for {
		if isClosed(t.wdl.wait()) {
			return written, os.ErrDeadlineExceeded
		}
		t.mu.Lock()
		if err := t.closedErr; err != nil {
			t.mu.Unlock()
			return written, err
		}
		if t.werr != nil {
			err := t.werr
			t.mu.Unlock()
			return written, err
		}
		if len(p) == 0 {
			t.mu.Unlock()
			return written, nil
		}
		room := int64(t.peerWin) - int64(t.spent-t.ackedIn) - msgCost
		if room <= 0 {
			t.mu.Unlock()
			select {
			case <-t.writable:
			case <-t.wdl.wait():
			case <-t.done:
			}
			continue
		}
		n := int(min(int64(len(p)), maxChunk, int64(t.peerWin/4), room))
		t.spent += uint64(n) + msgCost
		t.mu.Unlock()
		if err := t.send(kindData, p[:n]); err != nil {
			if !errors.Is(err, net.ErrClosed) {
				t.fail(err)
			}
			<-t.done // whoever stopped the sending is ending the tunnel
			t.mu.Lock()
			if t.closedErr != nil {
				err = t.closedErr
			} else if t.werr != nil {
				err = t.werr
			}
			t.mu.Unlock()
			return written, err
		}
		written += n
		p = p[n:]
	}
}

// send publishes one message to the other end, numbered.
func (t *tunnel) send(kind byte, body []byte) error {
	t.sendMu.Lock()
	defer t.sendMu.Unlock()
	return t.sendLocked(kind, body)
}

func (t *tunnel) sendLocked(kind byte, body []byte) error {
	if t.sentEnd || t.hush {
		return net.ErrClosed
	}
	t.mu.Lock()
	peer := t.peer
	t.mu.Unlock()
	data := make([]byte, prefixLen+len(body))
	data[0] = kind
	binary.BigEndian.PutUint64(data[1:prefixLen], t.seq)
	copy(data[prefixLen:], body)
	if err := t.b.nc.Publish(peer, data); err != nil {
		t.sentEnd = true // a gap: nothing after it would be of use
		return fmt.Errorf("%w: cannot publish to node %s: %w", ErrTunnelBroken, t.node, err)
	}
	t.seq++
	t.sentLately.Store(true)
	if kind == kindEnd {
		t.sentEnd = true
	}
	return nil
}

// keepalive runs on every keepalive tick: it pings the other end if
// nothing was sent since the last tick, and breaks the tunnel if nothing
// was received for three ticks.
func (t *tunnel) keepalive() {
	if n := t.silence.Add(1); n > t.misses.Load() {
		t.fail(fmt.Errorf("%w: node %s has said nothing for %v: it is gone, or NATS is away",
			ErrTunnelBroken, t.node, time.Duration(n-1)*t.b.opts.tunnelKeepalive))
		return
	}
	if t.sentLately.Swap(false) || !t.sendMu.TryLock() {
		return // the writer is sending
	}
	err := t.sendLocked(kindPing, nil)
	t.sendMu.Unlock()
	if err != nil && !errors.Is(err, net.ErrClosed) {
		t.fail(err)
	}
}

// fail breaks the tunnel: Read and Write return err (after what was
// received), and the other end is told why.
func (t *tunnel) fail(err error) {
	if t.finish(err, err, err.Error(), true) {
		t.b.logThrottled("tunnel", "natsbroker: a tunnel broke", "node", t.node, "err", err)
	}
}

// finish ends the tunnel once: Read returns rerr once the bytes received
// are read, Write returns werr; if tell, the other end receives the end
// marker with why. It reports whether the tunnel was still open.
func (t *tunnel) finish(rerr, werr error, why string, tell bool) bool {
	t.mu.Lock()
	if t.ended {
		t.mu.Unlock()
		return false
	}
	t.ended, t.rerr, t.werr = true, rerr, werr
	close(t.done)
	t.mu.Unlock()
	t.sendMu.Lock()
	if tell {
		_ = t.sendLocked(kindEnd, []byte(why))
	}
	t.hush = true
	t.sendMu.Unlock()
	t.teardown()
	return true
}

// teardown unsubscribes and forgets the tunnel, once.
func (t *tunnel) teardown() {
	t.once.Do(func() {
		if err := t.sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) && !errors.Is(err, nats.ErrBadSubscription) {
			t.b.logThrottled("tunnel-unsub", "natsbroker: cannot unsubscribe from a tunnel's inbox", "err", err)
		}
		t.b.removeTunnel(t)
	})
}

// Close closes the tunnel: the other end's Read returns io.EOF after
// what was written before. Blocked Reads and Writes return net.ErrClosed.
func (t *tunnel) Close() error {
	t.closeWith(net.ErrClosed)
	return nil
}

// closeWith closes the tunnel; Read and Write here return err.
func (t *tunnel) closeWith(err error) {
	t.mu.Lock()
	if t.closedErr == nil {
		t.closedErr = err
	}
	t.mu.Unlock()
	t.finish(err, err, "", true)
}

// LocalAddr returns this node's address: its ID.
func (t *tunnel) LocalAddr() net.Addr { return nodeAddr(t.b.nodeID) }

// RemoteAddr returns the other end's node ID.
func (t *tunnel) RemoteAddr() net.Addr { return nodeAddr(t.node) }

// SetDeadline sets both the read and the write deadline.
func (t *tunnel) SetDeadline(d time.Time) error {
	t.rdl.set(d)
	t.wdl.set(d)
	return nil
}

// SetReadDeadline sets when Read gives up: it then returns an error
// wrapping os.ErrDeadlineExceeded.
func (t *tunnel) SetReadDeadline(d time.Time) error {
	t.rdl.set(d)
	return nil
}

// SetWriteDeadline sets when a Write waiting for room in the window gives
// up: it then returns an error wrapping os.ErrDeadlineExceeded.
func (t *tunnel) SetWriteDeadline(d time.Time) error {
	t.wdl.set(d)
	return nil
}

// nodeAddr is the address of a tunnel's end: the ID of its node.
type nodeAddr string

func (a nodeAddr) Network() string { return "natsbroker" }
func (a nodeAddr) String() string  { return string(a) }

// deadline is a read or write deadline: its channel is closed once it
// passes. It is net.Pipe's design.
type deadline struct {
	mu     sync.Mutex
	timer  *time.Timer
	passed chan struct{}
}

func makeDeadline() deadline { return deadline{passed: make(chan struct{})} }

func (d *deadline) set(at time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.passed // the timer fired: wait until it has closed the channel
	}
	d.timer = nil
	passed := isClosed(d.passed)
	if at.IsZero() {
		if passed {
			d.passed = make(chan struct{})
		}
		return
	}
	if wait := time.Until(at); wait > 0 {
		if passed {
			d.passed = make(chan struct{})
		}
		c := d.passed
		d.timer = time.AfterFunc(wait, func() { close(c) })
		return
	}
	if !passed {
		close(d.passed)
	}
}

func (d *deadline) wait() chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.passed
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// poke wakes whoever waits on c, or the next to wait.
func poke(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
