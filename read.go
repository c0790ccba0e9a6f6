package wszero

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/wszero/wszero/internal/protocol"
)

// readLoop reads, decodes and binds messages and hands them to the handler
// loop, until the connection ends; then the client leaves.
//
// Between messages it waits for the next one in batchConn.waitReadable,
// whose few frames let the stack of an idle connection's reader stay at
// its smallest; readMessage, with the deep read path, runs only once data
// has come.
func (c *Client) readLoop() {
	st := readState{code: protocol.CloseNormal}
	c.touch()
	c.batch.frames.fill(c.server.frameBudget())
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

// frameFloodReason is the close reason for a peer that spent its frame
// budget (see frameBudget).
const frameFloodReason = "too many frames: far more bytes than the messages hold"

// endFrameFlood says why the reader stops for a peer that spent its frame
// budget.
func (c *Client) endFrameFlood(st *readState) {
	st.code, st.reason = protocol.ClosePolicy, frameFloodReason
	c.server.logThrottled(slog.LevelWarn, "wszero: client disconnected: it sent far more frames than messages", "client", c.id)
}

// frameBudget is how many bytes a peer may send for one message, or in one
// second: the largest message, and 64 KiB of frames and pings around it.
func (s *Server) frameBudget() int64 {
	return min(s.opts.maxMessageSize, 64<<20) + 64<<10
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
			st.code = protocol.CloseTooBig
			st.reason = fmt.Sprintf("message too big: the limit is %d bytes", s.opts.maxMessageSize)
			s.logger().Warn("wszero: client disconnected: message too big", "client", c.id, "limit", s.opts.maxMessageSize)
		case errors.Is(err, errFrameFlood):
			c.endFrameFlood(st)
		case errors.As(err, &ne) && ne.Timeout():
			st.code = protocol.CloseGoingAway
			st.reason = fmt.Sprintf("nothing heard from the client for %v", s.opts.pongTimeout)
			s.logger().Info("wszero: client disconnected: it stopped answering", "client", c.id, "timeout", s.opts.pongTimeout)
		default:
			st.reason = err.Error()
		}
		return false
	}
	c.touch()
	c.batch.frames.fill(s.frameBudget())
	mb := messageBufs.Get().(*messageBuf)
	defer putMessageBuf(mb)
	mb.buf.Reset()
	mb.limit = io.LimitedReader{R: r, N: s.opts.maxMessageSize + 1}
	n, err := mb.buf.ReadFrom(&mb.limit)
	mb.limit.R = nil
	if err != nil {
		if errors.Is(err, errFrameFlood) {
			c.endFrameFlood(st)
		}
		return false
	}
	if n > s.opts.maxMessageSize {
		st.code, st.drain = protocol.CloseTooBig, true
		st.reason = fmt.Sprintf("message too big: the limit is %d bytes", s.opts.maxMessageSize)
		s.logger().Warn("wszero: client disconnected: message too big", "client", c.id, "limit", s.opts.maxMessageSize)
		return false
	}
	verdict := c.checkRate()
	if verdict == rateDropped {
		return true
	}
	if verdict == rateFlood {
		st.code, st.drain = protocol.ClosePolicy, true
		st.reason = fmt.Sprintf("too many messages: the limit is %g a second", s.opts.ratePerSecond)
		s.logger().Warn("wszero: client disconnected: it kept sending too fast", "client", c.id, "limit", s.opts.ratePerSecond)
		return false
	}
	handed := monoNow()
	s.handOver(c, s.decodeFrame(kind, mb.buf.Bytes()))
	if waited := time.Duration(monoNow() - handed); waited >= stall {
		c.afterStall(waited)
	}
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

// drain says goodbye to a peer that may still be sending (a message too
// big, a flood): it queues the close frame, then reads and drops what
// arrives until the peer's own close frame, for at most closeLinger.
func (c *Client) drain(code int, reason string) {
	c.closeWith(code, reason)
	c.reader.draining = true
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
	if t <= 0 || c.reader.draining {
		return
	}
	c.reader.heard = monoNow()
	if rearm(c.reader.heard, c.reader.readSet, t) || c.batch.raw == nil {
		c.reader.readSet = c.reader.heard
		_ = c.conn.SetReadDeadline(c.reader.heard.add(t))
	}
}

// stall is how long a hand-over may keep the reader from reading before
// afterStall makes up for it.
const stall = 50 * time.Millisecond

// afterStall makes up for the time d that the server itself kept the
// reader from reading (a busy loop, a slow handler run by the reader): the
// peer was not heard because nobody listened, so its read deadline starts
// anew, and what it sent meanwhile, now read at once, is not counted
// against its rate as if it had come in a burst.
func (c *Client) afterStall(d time.Duration) {
	c.reader.readSet = 0
	c.touch()
	if c.reader.limiter != nil {
		c.reader.credit = min(c.reader.credit+int(d.Seconds()*c.server.opts.ratePerSecond), 10*c.server.opts.rateBurst)
	}
}

// rearm reports whether a read deadline last set at readSet (0: never)
// must be set anew when the peer is heard at heard: always the first
// time, whenever the connection was made (a time since the clock's start
// shorter than a sixteenth of the timeout once passed for "already set",
// and left the first connections after a start without a deadline), and
// after that once it has fallen a sixteenth of the timeout behind.
func rearm(heard, readSet monotime, timeout time.Duration) bool {
	return readSet == 0 || time.Duration(heard-readSet) >= timeout/16
}

// heardLately reports whether the peer was heard within the pong timeout,
// after a read deadline has passed, and then sets the deadline to when
// the timeout truly ends.
func (c *Client) heardLately() bool {
	t := c.server.opts.pongTimeout
	if t <= 0 || c.reader.draining || time.Duration(monoNow()-c.reader.heard) >= t {
		return false
	}
	c.reader.readSet = c.reader.heard
	_ = c.conn.SetReadDeadline(c.reader.heard.add(t))
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
		if h := s.handlerFor(protocol.OpDisconnect); h != nil {
			s.invoke(c, message{h: h})
		}
	})
}
