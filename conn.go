package wszero

import (
	"bufio"
	"errors"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// batchConn is the network connection under a client's websocket.Conn. While
// the writer sends a batch, writes are gathered and flushed as one system
// call; at any other time (the handshake, a protocol error the reader
// reports) they go straight through.
//
// gorilla sets a write deadline before each write, from whichever goroutine
// writes, which would let one goroutine's deadline govern another's write.
// batchConn ignores those and sets the deadline itself under its mutex: the
// batch's for a flush, writeTimeout from now for a write that goes through.
type batchConn struct {
	net.Conn
	timeout  time.Duration // for writes outside a batch
	mu       sync.Mutex
	batching bool
	deadline time.Time // the batch's
	armed    monotime  // the write deadline set on Conn, 0 before the first
	buf      *[]byte
	holding  bool   // writes are kept in held, not written (the handshake's response)
	held     []byte // what was written while holding

	// The reader's side, used by the reader goroutine only.
	br      *bufio.Reader   // gorilla's read buffer, ours so that we see what it holds
	raw     syscall.RawConn // nil when the connection is not a plain socket (TLS)
	readFn  func(fd uintptr) bool
	pending *[]byte // read by waitReadable, not yet taken by br
	off     int     // how much of pending br has taken
	readErr error   // the error readReady met, for br to take
	frames  frameBudget
}

// frameBudget bounds the bytes one connection may send for one message,
// frames and control frames around it included, or in one second, which
// ever comes later: however a peer cuts its traffic into frames (endless
// empty continuation frames, a stream of pings), the work it causes stays
// in proportion to the messages the rate limit lets through.
type frameBudget struct {
	limit int64    // bytes; 0: no budget (before the reader starts)
	left  int64    // bytes left
	since monotime // when left was last filled
}

// errFrameFlood is what Read returns once a peer has spent its budget.
var errFrameFlood = errors.New("wszero: too many frames: the peer sends far more bytes than its messages hold")

// fill gives the peer a whole budget again: a message has begun.
func (fb *frameBudget) fill(limit int64) {
	fb.limit, fb.left, fb.since = limit, limit, monoNow()
}

// spend takes n bytes from the budget, filling it again once a second has
// passed since it was last filled. It reports false when the budget is
// spent within the second.
func (fb *frameBudget) spend(n int) bool {
	if fb.limit == 0 {
		return true
	}
	fb.left -= int64(n)
	if fb.left >= 0 {
		return true
	}
	if now := monoNow(); time.Duration(now-fb.since) >= time.Second {
		fb.left, fb.since = fb.limit-int64(n), now
		return true
	}
	return false
}

// bufferedReadSize is the size of each connection's own read buffer, as
// small as gorilla takes (more than 256 bytes) and a size class of the
// allocator: longer messages bypass it, read straight into the reader's.
const bufferedReadSize = 288

// readBufferSize is the size of the pooled buffers waitReadable reads into.
const readBufferSize = 512

var readBufs = sync.Pool{New: func() any { b := make([]byte, readBufferSize); return &b }}

// newBatchConn wraps conn, whose own buffered reader is br. When br holds
// nothing and conn is a plain socket, the returned conn's reader waits for
// data with waitReadable.
func newBatchConn(conn net.Conn, br *bufio.Reader, timeout time.Duration) *batchConn {
	b := &batchConn{Conn: conn, timeout: timeout}
	if br.Buffered() > 0 {
		return b // the upgrader refuses a client that spoke too early
	}
	b.br = bufio.NewReaderSize(b, bufferedReadSize)
	if sc, ok := conn.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			b.raw = raw
			b.readFn = b.readReady
		}
	}
	return b
}

// waitReadable waits until the connection has something to read, when
// the read buffer is empty. It runs on the reader's goroutine with few
// frames under it, so that an idle connection's reader keeps the smallest
// stack; and what it reads goes to a pooled buffer taken only once there
// is data, so that an idle connection holds none. A closed connection
// ends the wait, and the reader's next read then reports it; so does the
// read deadline, and waitReadable then reports true: the caller may set a
// later deadline and wait again.
func (b *batchConn) waitReadable() (deadline bool) {
	if b.raw == nil || b.pending != nil || b.readErr != nil || b.br.Buffered() > 0 {
		return false
	}
	return errors.Is(b.raw.Read(b.readFn), os.ErrDeadlineExceeded)
}

// readReady reads what the socket holds into pending, and reports false
// when there is nothing yet, so that the runtime waits for data.
func (b *batchConn) readReady(fd uintptr) bool {
	buf := readBufs.Get().(*[]byte)
	n, err := syscall.Read(int(fd), *buf)
	for err == syscall.EINTR {
		n, err = syscall.Read(int(fd), *buf)
	}
	switch {
	case err == syscall.EAGAIN:
		readBufs.Put(buf)
		return false
	case err != nil:
		b.readErr = &net.OpError{Op: "read", Net: "tcp", Source: b.LocalAddr(), Addr: b.RemoteAddr(), Err: os.NewSyscallError("read", err)}
	case n > 0:
		*buf = (*buf)[:n]
		b.pending, b.off = buf, 0
		return true
	}
	readBufs.Put(buf) // end of file: the reader's own read sees it
	return true
}

// Read gives what waitReadable read first, then reads the connection.
// Its bytes are taken from the frame budget.
func (b *batchConn) Read(p []byte) (int, error) {
	if b.pending != nil {
		n := copy(p, (*b.pending)[b.off:])
		b.off += n
		if b.off == len(*b.pending) {
			*b.pending = (*b.pending)[:cap(*b.pending)]
			readBufs.Put(b.pending)
			b.pending = nil
		}
		return b.spent(n, nil)
	}
	if err := b.readErr; err != nil {
		b.readErr = nil
		return 0, err
	}
	return b.spent(b.Conn.Read(p))
}

// spent takes what a read returned from the frame budget.
func (b *batchConn) spent(n int, err error) (int, error) {
	if n > 0 && !b.frames.spend(n) {
		return n, errFrameFlood
	}
	return n, err
}

var batchBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// begin starts gathering writes, to be flushed by deadline.
func (b *batchConn) begin(deadline time.Time) {
	b.mu.Lock()
	b.batching = true
	b.deadline = deadline
	b.buf = batchBufs.Get().(*[]byte)
	b.mu.Unlock()
}

// SetWriteDeadline does nothing: batchConn sets write deadlines itself.
func (b *batchConn) SetWriteDeadline(time.Time) error { return nil }

// SetDeadline sets the read deadline; write deadlines are batchConn's own.
func (b *batchConn) SetDeadline(t time.Time) error { return b.Conn.SetReadDeadline(t) }

// Write gathers p while a batch is open, keeps it while holding, else
// writes it through.
func (b *batchConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.holding {
		b.held = append(b.held, p...)
		return len(p), nil
	}
	if b.batching {
		*b.buf = append(*b.buf, p...)
		return len(p), nil
	}
	if err := b.armWrite(time.Now().Add(b.timeout)); err != nil {
		return 0, err
	}
	return b.Conn.Write(p)
}

// releaseHandshake ends holding, and writes what was held.
func (b *batchConn) releaseHandshake() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	held := b.held
	b.holding, b.held = false, nil
	if len(held) == 0 {
		return nil
	}
	if err := b.armWrite(time.Now().Add(b.timeout)); err != nil {
		return err
	}
	_, err := b.Conn.Write(held)
	return err
}

// writeFrame adds a frame that wszero framed itself (header, then payload)
// to the batch, without going through gorilla: a broadcast's frame is the
// same bytes for every member. Outside a batch it writes them through.
func (b *batchConn) writeFrame(header, payload []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.batching:
		*b.buf = append(append(*b.buf, header...), payload...)
		return nil
	case b.holding:
		b.held = append(append(b.held, header...), payload...)
		return nil
	}
	if err := b.armWrite(time.Now().Add(b.timeout)); err != nil {
		return err
	}
	bufs := net.Buffers{header, payload}
	_, err := bufs.WriteTo(b.Conn)
	return err
}

// appendText adds a text frame holding payload to the open batch.
func (b *batchConn) appendText(payload []byte) {
	b.mu.Lock()
	*b.buf = append(appendTextHeader(*b.buf, len(payload)), payload...)
	b.mu.Unlock()
}

// armWrite sets the connection's write deadline to t, or leaves the one
// set before when it is earlier than t by less than a sixteenth of the
// write timeout: setting a deadline costs a timer update for every write.
// b.mu is held.
func (b *batchConn) armWrite(t time.Time) error {
	at := monotime(t.Sub(clockStart))
	if early := time.Duration(at - b.armed); b.armed != 0 && early >= 0 && early < b.timeout/16 {
		return nil
	}
	b.armed = at
	return b.Conn.SetWriteDeadline(t)
}

// flush writes what was gathered and ends the batch.
func (b *batchConn) flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.batching = false
	buf := b.buf
	b.buf = nil
	var err error
	switch {
	case len(*buf) == 0:
	case b.holding: // after the handshake's response, when it goes
		b.held = append(b.held, *buf...)
	default:
		if err = b.armWrite(b.deadline); err == nil {
			_, err = b.Conn.Write(*buf)
		}
	}
	if cap(*buf) <= 64<<10 {
		*buf = (*buf)[:0]
		batchBufs.Put(buf)
	}
	return err
}
