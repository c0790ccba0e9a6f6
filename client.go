package wszero

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
	"github.com/wszero/wszero/internal/binding"
	"golang.org/x/time/rate"
)

// ErrClosed is returned when sending to, or grouping, a client that has
// disconnected or is being closed.
var ErrClosed = errors.New("wszero: the client has disconnected")

// Close codes wszero sends, with the reason in words.
const (
	closeNormal    = websocket.CloseNormalClosure   // Client.Close
	closeGoingAway = websocket.CloseGoingAway       // server shutting down
	closePolicy    = websocket.ClosePolicyViolation // too slow, too fast
	closeTooBig    = websocket.CloseMessageTooBig   // message over the size limit
)

// Client is one connected browser or program.
//
// All methods of Client are safe to call from any goroutine, during or after
// the connection. Sending never blocks: frames go to the client's own queue,
// written by its own writer; a client whose queue overflows is disconnected.
type Client struct {
	id     string
	seq    uint64 // connection order, for stable listings
	server *Server
	conn   *websocket.Conn
	batch  *batchConn
	remote string
	ip     string // as the connection limits count it

	identity any // what WithAuthenticate's function returned

	limiter     *rate.Limiter
	floodWindow monotime // start of the second in which dropped is counted
	dropped     int      // messages dropped by the rate limit in that second

	mu        sync.Mutex
	queue     []outFrame // frames waiting for the writer
	queued    int        // bytes in queue
	writing   bool       // a writer is running
	held      bool       // the reader runs handlers and will write what they queue
	closing   bool       // a close frame is queued; nothing more is accepted
	pingSlot  uint8      // which of the keepalive's slots pings it; set before it is shared
	groups    map[string]struct{}
	state     map[string]any
	hardClose *time.Timer

	closeOnce  sync.Once
	connClosed chan struct{} // closed once the network connection is closed
	readerGone chan struct{} // closed once the reader has stopped reading
	draining   bool          // the reader only waits for the peer's close (reader's own)
	heard      monotime      // when the peer last showed it is alive (reader's own)
	readSet    monotime      // when the read deadline was last set (reader's own)
}

// frameKind says how the writer sends a queued frame.
type frameKind uint8

const (
	frameText frameKind = iota
	framePing
	framePong
	frameClose
)

// outFrame is one frame waiting in a client's queue.
type outFrame struct {
	kind     frameKind
	data     []byte         // the payload (shared by a broadcast's frames)
	prepared *preparedFrame // a broadcast's frame, framed once for all members
}

// newClientID returns a random ID, unique across servers in practice.
func newClientID() string {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("wszero: no randomness for client IDs: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// ID returns the client's unique ID, a short random string; with WithBroker,
// "node.random", unique across the cluster and naming the client's node.
func (c *Client) ID() string { return c.id }

// String returns the client's ID and address, for logs.
func (c *Client) String() string { return c.id + "@" + c.remote }

// Send sends the message {"op": op, …params} to this client.
// params is nil, a Params or map, or a struct that marshals to a JSON object;
// op wins over an "op" key in params. Send returns ErrClosed once the
// client has gone.
func (c *Client) Send(op string, params any) error {
	if err := checkSendOp(op); err != nil {
		return err
	}
	data, err := encodeMessage(op, params)
	if err != nil {
		return err
	}
	return c.enqueue(outFrame{kind: frameText, data: data})
}

// EvalJS asks the browser to run script (the "eval_js" op). It is meant for
// teaching: never put text that came from another client into script.
func (c *Client) EvalJS(script string) error {
	return c.Send("eval_js", Params{"script": script})
}

// Set stores a value under key for this client; Get returns it.
func (c *Client) Set(key string, value any) {
	c.mu.Lock()
	if c.state == nil {
		c.state = make(map[string]any)
	}
	c.state[key] = value
	c.mu.Unlock()
}

// Get returns the value Set stored under key, or nil.
func (c *Client) Get(key string) any {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state[key]
}

// Close disconnects the client after the messages already sent to it are
// written. Its disconnect handler runs. Close may be called more than once.
func (c *Client) Close() {
	c.closeWith(closeNormal, "closed by the server")
}

// sendError sends {"op": "error", "msg": msg, "for": op}, answering the
// call ref when it is not nil. op is the op of the message the error is
// about, or "" when that is not known.
func (c *Client) sendError(ref []byte, op, msg string) {
	var b bytes.Buffer
	b.WriteString(`{"op":"error","msg":`)
	binding.WriteJSON(&b, msg)
	if op != "" {
		b.WriteString(`,"for":`)
		binding.WriteJSON(&b, op)
	}
	if ref != nil {
		b.WriteString(`,"_ref":`)
		b.Write(ref)
	}
	b.WriteByte('}')
	_ = c.enqueue(outFrame{kind: frameText, data: b.Bytes()})
}

// sendReply answers the call ref with result.
func (c *Client) sendReply(ref []byte, op string, result any) {
	res, err := json.Marshal(result)
	if err != nil {
		c.server.logger().Error("wszero: handler result cannot be sent as JSON", "op", op, "err", err)
		c.sendError(ref, op, fmt.Sprintf("%s returned a value that cannot be sent as JSON: %v", op, err))
		return
	}
	var b bytes.Buffer
	b.Grow(len(res) + len(ref) + 32)
	b.WriteString(`{"op":"_reply","_ref":`)
	b.Write(ref)
	b.WriteString(`,"result":`)
	b.Write(res)
	b.WriteByte('}')
	_ = c.enqueue(outFrame{kind: frameText, data: b.Bytes()})
}

// enqueue adds a frame to the client's queue and makes sure a writer runs.
// It never blocks. A full queue disconnects the client: it is too slow.
func (c *Client) enqueue(f outFrame) error {
	lim := &c.server.opts
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return ErrClosed
	}
	size := len(f.data)
	if len(c.queue) >= lim.queueMessages || c.queued+size > lim.queueBytes {
		n, bytes := len(c.queue), c.queued
		clear(c.queue)
		c.queue, c.queued = c.queue[:0], 0
		reason := fmt.Sprintf("too slow: %d messages (%d bytes) were waiting to be sent; the limit is %d messages or %d bytes",
			n, bytes, lim.queueMessages, lim.queueBytes)
		c.closeLocked(closePolicy, reason)
		c.mu.Unlock()
		c.server.logger().Warn("wszero: client disconnected: its send queue overflowed", "client", c.id, "queued", n, "bytes", bytes)
		return fmt.Errorf("%w: it was %s", ErrClosed, reason)
	}
	c.queue = append(c.queue, f)
	c.queued += size
	if !c.held || len(c.queue) > heldFrames {
		c.startWriterLocked()
	}
	c.mu.Unlock()
	return nil
}

// startWriterLocked starts the writer goroutine unless one runs. c.mu is held.
func (c *Client) startWriterLocked() {
	if !c.writing {
		c.writing = true
		go c.writeLoop(false)
	}
}

// heldFrames is how many frames may wait for the reader while it runs
// handlers; with more, a writer goroutine starts at once.
const heldFrames = 16

// holdWrites tells enqueue that this client's reader is running handlers
// and will write what they send it, so that a reply takes no goroutine of
// its own. Frames from elsewhere wait at most as long as those handlers run.
func (c *Client) holdWrites() {
	c.mu.Lock()
	c.held = true
	c.mu.Unlock()
}

// releaseWrites ends holdWrites, writing what was queued meanwhile on the
// calling goroutine (the reader) when no writer runs.
func (c *Client) releaseWrites() {
	c.mu.Lock()
	c.held = false
	if c.writing || len(c.queue) == 0 {
		c.mu.Unlock()
		return
	}
	c.writing = true
	c.mu.Unlock()
	c.writeLoop(true)
}

// closeWith queues a close frame behind what is already queued, after which
// the writer closes the connection.
func (c *Client) closeWith(code int, reason string) {
	c.mu.Lock()
	c.closeLocked(code, reason)
	c.mu.Unlock()
}

// closeLocked does closeWith's work; c.mu is held.
func (c *Client) closeLocked(code int, reason string) {
	if c.closing {
		return
	}
	c.closing = true
	c.queue = append(c.queue, outFrame{kind: frameClose, data: websocket.FormatCloseMessage(code, closeReason(reason))})
	c.startWriterLocked()
	// However stuck the peer is, the connection ends within the write timeout.
	c.hardClose = time.AfterFunc(c.server.opts.writeTimeout, c.closeConn)
}

// maxCloseReason is the longest reason a close frame can carry, in bytes.
const maxCloseReason = 123

// closeReason shortens reason to fit in a close frame, at a rune boundary.
func closeReason(reason string) string {
	if len(reason) <= maxCloseReason {
		return reason
	}
	cut := maxCloseReason
	for cut > 0 && !utf8.RuneStart(reason[cut]) {
		cut--
	}
	return reason[:cut]
}

// closeLinger bounds how long a connection whose close frame has been sent
// waits for the peer's answer (or is read out) before it is closed.
const closeLinger = time.Second

// closeConn closes the network connection, once.
func (c *Client) closeConn() {
	c.closeOnce.Do(func() {
		c.conn.Close()
		close(c.connClosed)
		c.mu.Lock()
		if c.hardClose != nil {
			c.hardClose.Stop()
		}
		c.mu.Unlock()
	})
}

// finishClose ends a connection whose close frame has been written. The
// server closes the TCP connection, but not before the reader has seen the
// peer's answer (or closeLinger has passed): closing a socket with unread
// data makes the kernel reset the connection, and some peers then lose the
// close frame.
func (c *Client) finishClose() {
	if cw, ok := c.batch.Conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite() // nothing more will be written
	}
	t := time.NewTimer(c.linger())
	defer t.Stop()
	select {
	case <-c.readerGone:
	case <-t.C:
	}
	c.closeConn()
}

// linger is how long a closing connection waits for the peer's answer.
func (c *Client) linger() time.Duration {
	return min(closeLinger, c.server.opts.writeTimeout)
}

// writeLoop writes queued frames, merging everything queued at once into a
// single write, and exits when the queue is empty. The reader runs it with
// once set: it then writes one batch, and leaves what comes after, and the
// end of the connection, to a writer goroutine.
func (c *Client) writeLoop(once bool) {
	var batch []outFrame
	for {
		c.mu.Lock()
		if len(c.queue) == 0 {
			c.writing = false
			switch {
			case cap(c.queue) > 64:
				c.queue = nil // let a burst's backlog go
			case cap(c.queue) == 0 && cap(batch) <= 64:
				c.queue = batch[:0] // for the next frames, instead of a new slice
			}
			c.mu.Unlock()
			return
		}
		if once && batch != nil {
			go c.writeLoop(false) // still writing
			c.mu.Unlock()
			return
		}
		batch, c.queue = c.queue, batch[:0]
		c.queued = 0
		c.mu.Unlock()

		last, err := c.writeBatch(batch)
		clear(batch)
		if err != nil || last {
			var ne net.Error
			switch {
			case err == nil && once:
				go c.finishClose() // it waits for the reader
			case err == nil:
				c.finishClose()
			case errors.As(err, &ne) && ne.Timeout():
				c.server.logger().Info("wszero: client disconnected: a write to it took longer than the write timeout",
					"client", c.id, "timeout", c.server.opts.writeTimeout)
				c.closeConn()
			default:
				c.closeConn()
			}
			c.mu.Lock()
			c.closing = true
			clear(c.queue)
			c.queue, c.queued, c.writing = nil, 0, false
			c.mu.Unlock()
			return
		}
	}
}

// writeBatch writes frames in one system call. last reports that a close
// frame was written, after which the connection is done.
func (c *Client) writeBatch(frames []outFrame) (last bool, err error) {
	deadline := time.Now().Add(c.server.opts.writeTimeout)
	if err := c.conn.SetWriteDeadline(deadline); err != nil {
		return false, err
	}
	c.batch.begin(deadline)
	for i := range frames {
		f := &frames[i]
		switch {
		case f.prepared != nil:
			err = c.batch.writeFrame(f.prepared.wire, nil)
		case f.kind == frameText:
			c.batch.appendText(f.data)
		case f.kind == framePing:
			err = c.conn.WriteControl(websocket.PingMessage, nil, deadline)
		case f.kind == framePong:
			err = c.conn.WriteControl(websocket.PongMessage, f.data, deadline)
		case f.kind == frameClose:
			err = c.conn.WriteControl(websocket.CloseMessage, f.data, deadline)
			last = true
		}
		if err != nil || last {
			break
		}
	}
	if ferr := c.batch.flush(); err == nil {
		err = ferr
	}
	if errors.Is(err, websocket.ErrCloseSent) {
		err = nil
		last = true
	}
	return last, err
}

// readLoop reads, decodes and binds messages and hands them to the handler
// loop, until the connection ends; then the client leaves.
//
// Between messages it waits for the next one in batchConn.waitReadable,
// whose few frames let the stack of an idle connection's reader stay at
// its smallest; readMessage, with the deep read path, runs only once data
// has come.
func (c *Client) readLoop() {
	st := readState{code: closeNormal}
	c.touch()
	for {
		if c.batch.waitReadable() && c.heardLately() {
			continue // the deadline was an early one: wait on
		}
		if !c.readMessage(&st) {
			break
		}
	}
	if st.drain {
		c.server.removeClient(c) // at once: the drain may take a while
		c.drain(st.code, st.reason)
	}
	close(c.readerGone)
	c.leave(st.code, st.reason)
}

// readState is what the reader keeps from one message to the next.
type readState struct {
	code   int
	reason string
	drain  bool // the peer may still be sending when the reader stops
}

// readMessage reads one message and hands it over. It reports false when
// the reader is to stop, with st saying why.
//
//go:noinline
func (c *Client) readMessage(st *readState) bool {
	s := c.server
	kind, r, err := c.conn.NextReader()
	if err != nil {
		var ce *websocket.CloseError
		var ne net.Error
		switch {
		case errors.As(err, &ce):
			st.reason = fmt.Sprintf("the client closed the connection (%d %s)", ce.Code, ce.Text)
		case errors.Is(err, websocket.ErrReadLimit): // a frame's length past what int64 holds
			st.code = closeTooBig
			st.reason = fmt.Sprintf("message too big: the limit is %d bytes", s.opts.maxMessageSize)
			s.logger().Warn("wszero: client disconnected: message too big", "client", c.id, "limit", s.opts.maxMessageSize)
		case errors.As(err, &ne) && ne.Timeout():
			st.code = closeGoingAway
			st.reason = fmt.Sprintf("nothing heard from the client for %v", s.opts.pongTimeout)
			s.logger().Info("wszero: client disconnected: it stopped answering", "client", c.id, "timeout", s.opts.pongTimeout)
		default:
			st.reason = err.Error()
		}
		return false
	}
	c.touch()
	mb := messageBufs.Get().(*messageBuf)
	defer putMessageBuf(mb)
	mb.buf.Reset()
	mb.limit = io.LimitedReader{R: r, N: s.opts.maxMessageSize + 1}
	n, err := mb.buf.ReadFrom(&mb.limit)
	mb.limit.R = nil
	if err != nil {
		return false
	}
	if n > s.opts.maxMessageSize {
		st.code, st.drain = closeTooBig, true
		st.reason = fmt.Sprintf("message too big: the limit is %d bytes", s.opts.maxMessageSize)
		s.logger().Warn("wszero: client disconnected: message too big", "client", c.id, "limit", s.opts.maxMessageSize)
		return false
	}
	verdict := c.checkRate()
	if verdict == rateDropped {
		return true
	}
	if verdict == rateFlood {
		st.code, st.drain = closePolicy, true
		st.reason = fmt.Sprintf("too many messages: the limit is %g a second", s.opts.ratePerSecond)
		s.logger().Warn("wszero: client disconnected: it kept sending too fast", "client", c.id, "limit", s.opts.ratePerSecond)
		return false
	}
	if !s.accept() {
		return true // Shutdown has begun: the message is not taken
	}
	in, task := c.messageTask(kind, mb.buf.Bytes())
	s.handOver(c, in, task)
	return true
}

// messageBuf holds a message while the reader decodes it (what outlives
// decoding is copied), with the reader that limits its size.
type messageBuf struct {
	buf   bytes.Buffer
	limit io.LimitedReader
}

// messageBufs keep messageBufs between messages: a connection holds none.
var messageBufs = sync.Pool{New: func() any { return new(messageBuf) }}

func putMessageBuf(mb *messageBuf) {
	if mb.buf.Cap() <= 16<<10 { // do not keep a big message's buffer alive
		messageBufs.Put(mb)
	}
}

// messageTask decodes one frame and returns what the handler loop is to do
// with it: run its handler (in, with task nil), or answer with an error
// (task). Errors, too, go through the loop, so that they come after the
// replies to the client's earlier messages. For a frame that needs nothing
// (_pong), both are empty.
func (c *Client) messageTask(kind int, data []byte) (in incoming, task func()) {
	s := c.server
	switch {
	case kind != websocket.TextMessage:
		return in, func() {
			c.sendError(nil, "", `wszero takes text frames holding JSON, like {"op": "hello"}; this was a binary frame`)
		}
	case !utf8.Valid(data):
		return in, func() {
			c.sendError(nil, "", `the message is not valid UTF-8 text, which WebSocket text frames and JSON must be: send a JSON object like {"op": "hello"}`)
		}
	}
	decoded, err := s.decode(data)
	if err != nil {
		msg := err.Error()
		return in, func() {
			// An op the client may not send is refused for that, whatever
			// else is wrong with the message.
			if decoded.h == nil || !s.refused(c, decoded.ref, decoded.op) {
				c.sendError(decoded.ref, decoded.op, msg)
			}
		}
	}
	return decoded, nil
}

// drain says goodbye to a peer that may still be sending (a message too
// big, a flood): it queues the close frame, then reads and drops what
// arrives until the peer's own close frame, for at most closeLinger.
func (c *Client) drain(code int, reason string) {
	c.closeWith(code, reason)
	c.draining = true
	_ = c.conn.SetReadDeadline(time.Now().Add(c.linger()))
	for {
		_, r, err := c.conn.NextReader()
		if err != nil {
			return
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			return
		}
	}
}

// rateVerdict is what the rate limit decides about one incoming message.
type rateVerdict uint8

const (
	rateOK      rateVerdict = iota // handle it
	rateDropped                    // over the limit: drop it
	rateFlood                      // far over the limit for too long: disconnect
)

// checkRate applies the rate limit to one incoming message. A message over
// the limit is dropped, and the sender hears so at most once a second; a
// client that has more than a burst's worth dropped within a second is
// flooding and is disconnected.
func (c *Client) checkRate() rateVerdict {
	if c.limiter == nil || c.limiter.Allow() {
		return rateOK
	}
	if now := monoNow(); now-c.floodWindow >= monotime(time.Second) {
		c.floodWindow, c.dropped = now, 0
	}
	c.dropped++
	if c.dropped > c.server.opts.rateBurst {
		return rateFlood
	}
	if c.dropped == 1 {
		c.sendError(nil, "", fmt.Sprintf("slow down: you are sending more than %g messages a second, so some were dropped", c.server.opts.ratePerSecond))
		c.server.logThrottled(slog.LevelInfo, "wszero: messages dropped: a client sends faster than the rate limit",
			"client", c.id, "limit", c.server.opts.ratePerSecond)
	}
	return rateDropped
}

// handleControl answers the peer's pings and close frame through the
// client's queue, so that only the writer writes, and counts pongs and
// pings as signs of life.
func (c *Client) handleControl() {
	c.conn.SetPingHandler(func(data string) error {
		c.touch()
		_ = c.enqueue(outFrame{kind: framePong, data: []byte(data)})
		return nil
	})
	c.conn.SetPongHandler(func(string) error {
		c.touch()
		return nil
	})
	c.conn.SetCloseHandler(func(code int, _ string) error {
		c.closeWith(code, "") // echo the peer's code, after what is queued
		return nil
	})
}

// touch notes that the peer is alive, and pushes the read deadline
// forward. Setting a deadline costs a timer update, so on a plain socket
// it is moved only when it has fallen behind by a sixteenth of the pong
// timeout; when such a deadline passes early, waitReadable sees it, and
// heardLately sets the true one.
func (c *Client) touch() {
	t := c.server.opts.pongTimeout
	if t <= 0 || c.draining {
		return
	}
	c.heard = monoNow()
	if time.Duration(c.heard-c.readSet) >= t/16 || c.batch.raw == nil {
		c.readSet = c.heard
		_ = c.conn.SetReadDeadline(c.heard.add(t))
	}
}

// heardLately reports whether the peer was heard within the pong timeout,
// after a read deadline has passed, and then sets the deadline to when
// the timeout truly ends.
func (c *Client) heardLately() bool {
	t := c.server.opts.pongTimeout
	if t <= 0 || c.draining || time.Duration(monoNow()-c.heard) >= t {
		return false
	}
	c.readSet = c.heard
	_ = c.conn.SetReadDeadline(c.heard.add(t))
	return true
}

// leave removes the client from the server and its groups, closes the
// connection after what is queued, and runs the disconnect handler.
func (c *Client) leave(code int, reason string) {
	s := c.server
	s.removeClient(c)
	c.closeWith(code, reason)
	<-c.connClosed
	s.release(c.ip)
	s.logger().Debug("wszero: client disconnected", "client", c.id, "reason", reason)
	s.submit(func() {
		defer s.conns.Done()
		if h := s.handlerFor(opDisconnect); h != nil {
			s.run(c, incoming{h: h})
		}
	})
}

// monotime is a moment on the monotonic clock, as the time since
// clockStart: eight bytes where a time.Time takes twenty-four, for what
// every connection keeps.
type monotime time.Duration

var clockStart = time.Now()

// monoNow returns the monotime now.
func monoNow() monotime { return monotime(time.Since(clockStart)) }

// add returns the time d after m.
func (m monotime) add(d time.Duration) time.Time { return clockStart.Add(time.Duration(m) + d) }

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
func (b *batchConn) Read(p []byte) (int, error) {
	if b.pending != nil {
		n := copy(p, (*b.pending)[b.off:])
		b.off += n
		if b.off == len(*b.pending) {
			*b.pending = (*b.pending)[:cap(*b.pending)]
			readBufs.Put(b.pending)
			b.pending = nil
		}
		return n, nil
	}
	if err := b.readErr; err != nil {
		b.readErr = nil
		return 0, err
	}
	return b.Conn.Read(p)
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

// preparedFrame is a text frame as it goes on the wire from a server
// (final, unmasked, uncompressed): a broadcast is framed once for everyone.
type preparedFrame struct {
	wire []byte
}

// maxHeader is the longest header of a frame from a server.
const maxHeader = 10

// newPreparedFrame frames payload as one text frame.
func newPreparedFrame(payload []byte) *preparedFrame {
	wire := appendTextHeader(make([]byte, 0, maxHeader+len(payload)), len(payload))
	return &preparedFrame{wire: append(wire, payload...)}
}

// appendTextHeader appends the header of a final, unmasked text frame of
// n bytes.
func appendTextHeader(b []byte, n int) []byte {
	const finText = 0x81
	switch {
	case n < 126:
		return append(b, finText, byte(n))
	case n < 1<<16:
		return append(b, finText, 126, byte(n>>8), byte(n))
	}
	return append(b, finText, 127, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
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
