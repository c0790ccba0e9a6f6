package nodetunnel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// errPeerClosed is what Write returns once the other end has closed.
var errPeerClosed = fmt.Errorf("wszero: the tunnel's other end is closed: %w", io.ErrClosedPipe)

// tunnel is one end of a tunnel between two nodes: a net.Conn.
type tunnel struct {
	m      *Tunnels
	key           // the node at the other end, and the tunnel's number
	side   byte   // which end this is, in the messages it sends
	window uint64 // of what this end receives

	answered chan struct{} // closed when an opener has the acceptance

	rmu sync.Mutex // one Read at a time
	wmu sync.Mutex // one Write at a time

	mu        sync.Mutex
	opening   bool   // an opener waits for the answer
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
	sentEnd bool       // the end marker, or a message that Send refused, was sent: nothing after it is of use
	hush    bool       // the tunnel has ended: send nothing more

	sentLately atomic.Bool  // something was sent since the last keepalive tick
	silence    atomic.Int32 // keepalive ticks since something was received
	misses     atomic.Int32 // how many ticks of silence break the tunnel

	rdl, wdl deadline
	once     sync.Once
}

// newTunnel makes this node's end of the tunnel that k names.
func (m *Tunnels) newTunnel(k key) *tunnel {
	t := &tunnel{
		m:        m,
		key:      k,
		side:     sideAcceptor,
		window:   uint64(m.cfg.Window),
		answered: make(chan struct{}),
		opening:  k.mine,
		readable: make(chan struct{}, 1),
		writable: make(chan struct{}, 1),
		done:     make(chan struct{}),
		rdl:      makeDeadline(),
		wdl:      makeDeadline(),
	}
	if k.mine {
		t.side = sideOpener
	}
	t.misses.Store(misses) // an opener waits three of its own intervals for the answer
	return t
}

// connect sets the other end's window and keepalive; data may be sent
// from now on.
func (t *tunnel) connect(window int, keepalive time.Duration) {
	// Silent for three of the other end's intervals, counted in this
	// end's ticks, rounded up.
	own := t.m.cfg.Keepalive
	t.misses.Store(int32(min((misses*keepalive+own-1)/own, 1<<20)))
	t.mu.Lock()
	t.peerWin = uint64(window)
	t.mu.Unlock()
}

// receive takes in one message from the other end. It runs on Receive's
// goroutine and never waits for a reader.
func (t *tunnel) receive(kind byte, seq uint64, body []byte) {
	t.silence.Store(0)
	t.mu.Lock()
	if t.ended {
		t.mu.Unlock()
		return
	}
	if seq != t.rseq {
		due := t.rseq
		t.mu.Unlock()
		t.fail(fmt.Errorf("%w: messages from node %s were lost: number %d came when %d was due", ErrTunnelBroken, t.node, seq, due))
		return
	}
	t.rseq++
	if t.opening {
		t.opening = false
		t.mu.Unlock()
		t.answer(kind, body)
		return
	}
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
			t.finish(io.EOF, errPeerClosed, 0, "")
		} else {
			err := fmt.Errorf("%w: at node %s: %s", ErrTunnelBroken, t.node, body)
			t.finish(err, err, 0, "")
		}
	case kindCancel:
		t.mu.Unlock()
		if t.mine {
			t.fail(fmt.Errorf("%w: node %s sent a message of the wrong end", ErrTunnelBroken, t.node))
			return
		}
		err := fmt.Errorf("wszero: node %s gave up opening the tunnel before it was accepted: %w", t.node, io.ErrUnexpectedEOF)
		t.finish(err, err, 0, "")
	default:
		t.mu.Unlock()
		t.fail(fmt.Errorf("%w: node %s sent a message of an unknown kind", ErrTunnelBroken, t.node))
	}
}

// answer takes in the other node's answer to this node's request to open
// the tunnel: its first message.
func (t *tunnel) answer(kind byte, body []byte) {
	switch kind {
	case kindAccept:
		window, keepalive, ok := parseEnd(body)
		if !ok {
			t.fail(fmt.Errorf("%w: node %s accepted the tunnel without its window and keepalive: is it of another version?", ErrTunnelBroken, t.node))
			return
		}
		t.connect(window, keepalive)
		close(t.answered)
	case kindRefuse:
		err := &RefusedError{Node: t.node, Reason: string(body)}
		t.finish(err, err, 0, "")
	default:
		t.fail(fmt.Errorf("%w: node %s sent a message of kind %q before its answer", ErrTunnelBroken, t.node, kind))
	}
}

// ackDue reports whether a quarter of the window has been freed since the
// other end was last told. t.mu is held.
func (t *tunnel) ackDue() bool { return t.freed-t.ackedOut >= t.window/4 && !t.opening }

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

// send sends one message to the other end, numbered.
func (t *tunnel) send(kind byte, body []byte) error {
	t.sendMu.Lock()
	defer t.sendMu.Unlock()
	return t.sendLocked(kind, body)
}

func (t *tunnel) sendLocked(kind byte, body []byte) error {
	if t.sentEnd || t.hush {
		return net.ErrClosed
	}
	msg := appendHeader(make([]byte, 0, headerLen+len(body)), kind, t.side, t.id, t.seq, body)
	if err := t.m.cfg.Send(t.node, msg); err != nil {
		t.sentEnd = true // a gap: nothing after it would be of use
		return fmt.Errorf("%w: cannot send to node %s: %w", ErrTunnelBroken, t.node, err)
	}
	t.seq++
	t.sentLately.Store(true)
	if kind == kindEnd || kind == kindCancel {
		t.sentEnd = true
	}
	return nil
}

// keepalive runs on every keepalive tick: it pings the other end if
// nothing was sent since the last tick, and breaks the tunnel if nothing
// was received for three of the other end's intervals. An opener waits
// three of its own for the answer.
func (t *tunnel) keepalive() {
	t.mu.Lock()
	opening := t.opening
	t.mu.Unlock()
	if n := t.silence.Add(1); n > t.misses.Load() {
		silent := time.Duration(n-1) * t.m.cfg.Keepalive
		if opening {
			err := fmt.Errorf("%w: node %s has not answered the tunnel for %v", ErrNoNode, t.node, silent)
			t.finish(err, err, kindCancel, "")
			return
		}
		t.fail(fmt.Errorf("%w: node %s has said nothing for %v: it is gone, or out of reach", ErrTunnelBroken, t.node, silent))
		return
	}
	if opening || t.sentLately.Swap(false) || !t.sendMu.TryLock() {
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
	if t.finish(err, err, kindEnd, err.Error()) {
		t.m.logBroken(t.node, err)
	}
}

// finish ends the tunnel once: Read returns rerr once the bytes received
// are read, Write returns werr; unless tell is 0, the other end receives a
// last message of that kind with why. It reports whether the tunnel was
// still open.
func (t *tunnel) finish(rerr, werr error, tell byte, why string) bool {
	t.mu.Lock()
	if t.ended {
		t.mu.Unlock()
		return false
	}
	t.ended, t.rerr, t.werr = true, rerr, werr
	if t.opening && tell == kindEnd {
		tell = kindCancel // the other end knows no tunnel yet, if it ever will
	}
	close(t.done)
	t.mu.Unlock()
	t.sendMu.Lock()
	if tell != 0 {
		_ = t.sendLocked(tell, []byte(why[:min(len(why), maxChunk)]))
	}
	t.hush = true
	t.sendMu.Unlock()
	t.once.Do(func() { t.m.forget(t) })
	return true
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
	t.finish(err, err, kindEnd, "")
}

// LocalAddr returns this node's address: its ID.
func (t *tunnel) LocalAddr() net.Addr { return nodeAddr(t.m.cfg.Node) }

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

func (a nodeAddr) Network() string { return "wszero-node" }
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
