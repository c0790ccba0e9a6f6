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
func (l *link) readLoop() {
	st := readState{code: protocol.CloseNormal}
	l.touch()
	l.batch.frames.fill(l.server.frameBudget())
	for {
		if l.batch.waitReadable() && l.heardLately() {
			continue // the deadline was an early one: wait on
		}
		if !l.readMessage(&st) {
			break
		}
	}
	if st.drain {
		l.c.end(st.code, st.reason) // at once (it leaves the server's lists): the drain may take a while
		l.drain(st.code, st.reason)
	}
	close(l.readerGone)
	l.leave(st)
}

// frameFloodReason is the close reason for a peer that spent its frame
// budget (see frameBudget).
const frameFloodReason = "too many frames: far more bytes than the messages hold"

// endFrameFlood says why the reader stops for a peer that spent its frame
// budget.
func (l *link) endFrameFlood(st *readState) {
	st.code, st.reason, st.forGood = protocol.ClosePolicy, frameFloodReason, true
	l.server.logThrottled(slog.LevelWarn, "wszero: client disconnected: it sent far more frames than messages", "client", l.c.id)
}

// frameBudget is how many bytes a peer may send for one message, or in one
// second: the largest message, and 64 KiB of frames and pings around it.
func (s *Server) frameBudget() int64 {
	return min(s.opts.maxMessageSize, 64<<20) + 64<<10
}

// readState is what the reader keeps from one message to the next.
type readState struct {
	code    int
	reason  string
	drain   bool // the peer may still be sending when the reader stops
	forGood bool // the session ends with the connection: the peer closed on purpose, or broke a limit
}

// readMessage reads one message and hands it over. It reports false when
// the reader is to stop, with st saying why.
//
//go:noinline
func (l *link) readMessage(st *readState) bool {
	s := l.server
	kind, r, err := l.conn.NextReader()
	if err != nil {
		var ce *websocket.CloseError
		var ne net.Error
		switch {
		case errors.As(err, &ce):
			st.reason = fmt.Sprintf("the client closed the connection (%d %s)", ce.Code, ce.Text)
			// A page that is closed or reloaded says 1001, a program that
			// closes says 1000: it is gone, not away.
			st.forGood = ce.Code == websocket.CloseNormalClosure || ce.Code == websocket.CloseGoingAway
		case errors.Is(err, websocket.ErrReadLimit): // a frame's length past what int64 holds
			st.code, st.forGood = protocol.CloseTooBig, true
			st.reason = fmt.Sprintf("message too big: the limit is %d bytes", s.opts.maxMessageSize)
			s.logger().Warn("wszero: client disconnected: message too big", "client", l.c.id, "limit", s.opts.maxMessageSize)
		case errors.Is(err, errFrameFlood):
			l.endFrameFlood(st)
		case errors.As(err, &ne) && ne.Timeout():
			st.code = protocol.CloseGoingAway
			if l.c.sessioned {
				st.code = protocol.CloseReconnecting // the session is kept: it may resume
			}
			st.reason = fmt.Sprintf("nothing heard from the client for %v", s.opts.pongTimeout)
			s.logger().Info("wszero: client disconnected: it stopped answering", "client", l.c.id, "timeout", s.opts.pongTimeout)
		default:
			st.reason = err.Error()
		}
		return false
	}
	l.touch()
	l.batch.frames.fill(s.frameBudget())
	mb := messageBufs.Get().(*messageBuf)
	defer putMessageBuf(mb)
	mb.buf.Reset()
	mb.limit = io.LimitedReader{R: r, N: s.opts.maxMessageSize + 1}
	n, err := mb.buf.ReadFrom(&mb.limit)
	mb.limit.R = nil
	if err != nil {
		if errors.Is(err, errFrameFlood) {
			l.endFrameFlood(st)
		}
		return false
	}
	if n > s.opts.maxMessageSize {
		st.code, st.drain, st.forGood = protocol.CloseTooBig, true, true
		st.reason = fmt.Sprintf("message too big: the limit is %d bytes", s.opts.maxMessageSize)
		s.logger().Warn("wszero: client disconnected: message too big", "client", l.c.id, "limit", s.opts.maxMessageSize)
		return false
	}
	verdict := l.checkRate()
	if verdict == rateDropped {
		// Dropped, yet taken: the client numbered it, and must not send
		// it again after a resume.
		if l.c.sessioned && !protocol.Unnumbered(s.decodeFrame(kind, mb.buf.Bytes()).op) {
			l.taken(int(n))
		}
		return true
	}
	if verdict == rateFlood {
		st.code, st.drain, st.forGood = protocol.ClosePolicy, true, true
		st.reason = fmt.Sprintf("too many messages: the limit is %g a second", s.opts.ratePerSecond)
		s.logger().Warn("wszero: client disconnected: it kept sending too fast", "client", l.c.id, "limit", s.opts.ratePerSecond)
		return false
	}
	m := s.decodeFrame(kind, mb.buf.Bytes())
	if !protocol.Unnumbered(m.op) {
		l.taken(int(n))
	} else if m.op == protocol.OpAck && m.problem == "" {
		l.c.acked(m.seen)
	}
	handed := monoNow()
	s.handOver(l, m)
	if waited := time.Duration(monoNow() - handed); waited >= stall {
		l.afterStall(waited)
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
func (l *link) drain(code int, reason string) {
	l.closeWith(code, reason)
	l.reader.draining = true
	_ = l.conn.SetReadDeadline(time.Now().Add(l.linger()))
	for {
		_, r, err := l.conn.NextReader()
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
func (l *link) handleControl() {
	l.conn.SetPingHandler(func(data string) error {
		l.touch()
		_ = l.c.enqueue(outFrame{kind: framePong, data: []byte(data)})
		return nil
	})
	l.conn.SetPongHandler(func(string) error {
		l.touch()
		return nil
	})
	l.conn.SetCloseHandler(func(code int, _ string) error {
		l.closeWith(code, "") // echo the peer's code, after what is queued
		return nil
	})
}

// touch notes that the peer is alive, and pushes the read deadline
// forward. Setting a deadline costs a timer update, so on a plain socket
// it is moved only when it has fallen behind by a sixteenth of the pong
// timeout; when such a deadline passes early, waitReadable sees it, and
// heardLately sets the true one.
func (l *link) touch() {
	t := l.server.opts.pongTimeout
	if t <= 0 || l.reader.draining {
		return
	}
	l.reader.heard = monoNow()
	if rearm(l.reader.heard, l.reader.readSet, t) || l.batch.raw == nil {
		l.reader.readSet = l.reader.heard
		_ = l.conn.SetReadDeadline(l.reader.heard.add(t))
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
func (l *link) afterStall(d time.Duration) {
	l.reader.readSet = 0
	l.touch()
	if l.reader.limiter != nil {
		l.reader.credit = min(l.reader.credit+int(d.Seconds()*l.server.opts.ratePerSecond), 10*l.server.opts.rateBurst)
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
func (l *link) heardLately() bool {
	t := l.server.opts.pongTimeout
	if t <= 0 || l.reader.draining || time.Duration(monoNow()-l.reader.heard) >= t {
		return false
	}
	l.reader.readSet = l.reader.heard
	_ = l.conn.SetReadDeadline(l.reader.heard.add(t))
	return true
}

// leave ends the link: it closes the connection after what is queued,
// and then the client is away, if it can resume, or it leaves for good.
func (l *link) leave(st readState) {
	c, s := l.c, l.server
	if !l.replaced() && (st.forGood || !c.canResume()) {
		c.end(st.code, st.reason)
	}
	l.closeWith(st.code, st.reason)
	<-l.connClosed
	s.release(l.ip)
	c.linkEnded(l, st.reason)
}
