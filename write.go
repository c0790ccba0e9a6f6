package wszero

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
	"github.com/wszero/wszero/internal/protocol"
)

// frameKind says how the writer sends a queued frame.
type frameKind uint8

const (
	frameText    frameKind = iota // a message, numbered in a session
	frameSession                  // a message of the session protocol or the keepalive, not numbered
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

// enqueue adds a frame to the client's queue and makes sure a writer runs.
// It never blocks. A message to a client with a session is also kept for
// a resume, and while the client is away it is only kept. A full queue
// disconnects the client: it is too slow.
func (c *Client) enqueue(f outFrame) error {
	lim := &c.server.opts
	c.mu.Lock()
	if c.left {
		c.mu.Unlock()
		return ErrClosed
	}
	size := len(f.data)
	if size > lim.queueBytes {
		// No queue could hold it: the frame is dropped, not the client.
		c.mu.Unlock()
		c.server.logThrottled(slog.LevelWarn, "wszero: a message too big for a client's send queue was not sent", "client", c.id, "bytes", size, "limit", lim.queueBytes)
		return c.server.tooBig(size)
	}
	kept := f.kind == frameText && c.session != nil
	switch {
	case kept:
		c.session.record(c.server, f, size)
	case f.kind == framePing && c.session != nil:
		c.session.shrink() // the keepalive comes by: an idle client's empty log goes
	}
	l := c.link
	if l == nil || l.send.closing {
		c.mu.Unlock()
		if kept {
			return nil // for when it is back
		}
		return ErrClosed
	}
	if len(l.send.frames) >= lim.queueMessages || l.send.bytes+size > lim.queueBytes {
		n, bytes := len(l.send.frames), l.send.bytes
		clear(l.send.frames)
		l.send.frames, l.send.bytes = l.send.frames[:0], 0
		reason := fmt.Sprintf("too slow: %d messages (%d bytes) were waiting to be sent; the limit is %d messages or %d bytes",
			n, bytes, lim.queueMessages, lim.queueBytes)
		l.closeLocked(protocol.ClosePolicy, reason)
		c.mu.Unlock()
		c.server.logger().Warn("wszero: client disconnected: its send queue overflowed", "client", c.id, "queued", n, "bytes", bytes)
		if kept {
			return nil // kept for a resume
		}
		return fmt.Errorf("%w: it was %s", ErrClosed, reason)
	}
	l.send.frames = append(l.send.frames, f)
	l.send.bytes += size
	if !l.send.held || len(l.send.frames) > heldFrames {
		l.startWriterLocked()
	}
	c.mu.Unlock()
	return nil
}

// startWriterLocked starts the writer goroutine unless one runs. c.mu is held.
func (l *link) startWriterLocked() {
	if !l.send.writing {
		l.send.writing = true
		go l.writeLoop(false)
	}
}

// heldFrames is how many frames may wait for the reader while it runs
// handlers; with more, a writer goroutine starts at once.
const heldFrames = 16

// holdWrites tells enqueue that this link's reader is running handlers
// and will write what they send it, so that a reply takes no goroutine of
// its own. Frames from elsewhere wait at most as long as those handlers run.
func (l *link) holdWrites() {
	l.c.mu.Lock()
	l.send.held = true
	l.c.mu.Unlock()
}

// releaseWrites ends holdWrites, writing what was queued meanwhile on the
// calling goroutine (the reader) when no writer runs.
func (l *link) releaseWrites() {
	l.c.mu.Lock()
	l.send.held = false
	if l.send.writing || len(l.send.frames) == 0 {
		l.c.mu.Unlock()
		return
	}
	l.send.writing = true
	l.c.mu.Unlock()
	l.writeLoop(true)
}

// writeLoop writes queued frames, merging everything queued at once into a
// single write, and exits when the queue is empty. The reader runs it with
// once set: it then writes one batch, and leaves what comes after, and the
// end of the connection, to a writer goroutine.
func (l *link) writeLoop(once bool) {
	c := l.c
	var batch []outFrame
	for {
		c.mu.Lock()
		if len(l.send.frames) == 0 {
			l.send.writing = false
			switch {
			case cap(l.send.frames) > 64:
				l.send.frames = nil // let a burst's backlog go
			case cap(l.send.frames) == 0 && cap(batch) <= 64:
				l.send.frames = batch[:0] // for the next frames, instead of a new slice
			}
			c.mu.Unlock()
			return
		}
		if once && batch != nil {
			go l.writeLoop(false) // still writing
			c.mu.Unlock()
			return
		}
		batch, l.send.frames = l.send.frames, batch[:0]
		l.send.bytes = 0
		c.mu.Unlock()

		last, err := l.writeBatch(batch)
		clear(batch)
		if err != nil || last {
			var ne net.Error
			switch {
			case err == nil && once:
				go l.finishClose() // it waits for the reader
			case err == nil:
				l.finishClose()
			case errors.As(err, &ne) && ne.Timeout():
				c.server.logger().Info("wszero: client disconnected: a write to it took longer than the write timeout",
					"client", c.id, "timeout", c.server.opts.writeTimeout)
				l.closeConn()
			default:
				l.closeConn()
			}
			c.mu.Lock()
			l.send.closing = true
			clear(l.send.frames)
			l.send.frames, l.send.bytes, l.send.writing = nil, 0, false
			c.mu.Unlock()
			return
		}
	}
}

// writeBatch writes frames in one system call. last reports that a close
// frame was written, after which the connection is done.
func (l *link) writeBatch(frames []outFrame) (last bool, err error) {
	deadline := time.Now().Add(l.server.opts.writeTimeout)
	if err := l.conn.SetWriteDeadline(deadline); err != nil {
		return false, err
	}
	l.batch.begin(deadline)
	for i := range frames {
		f := &frames[i]
		switch {
		case f.prepared != nil:
			err = l.batch.writeFrame(f.prepared.wire, nil)
		case f.kind == frameText || f.kind == frameSession:
			l.batch.appendText(f.data)
		case f.kind == framePing:
			err = l.conn.WriteControl(websocket.PingMessage, nil, deadline)
		case f.kind == framePong:
			err = l.conn.WriteControl(websocket.PongMessage, f.data, deadline)
		case f.kind == frameClose:
			err = l.conn.WriteControl(websocket.CloseMessage, f.data, deadline)
			last = true
		}
		if err != nil || last {
			break
		}
	}
	if ferr := l.batch.flush(); err == nil {
		err = ferr
	}
	if errors.Is(err, websocket.ErrCloseSent) {
		err = nil
		last = true
	}
	return last, err
}

// closeWith queues a close frame behind what is already queued, after which
// the writer closes the connection.
func (l *link) closeWith(code int, reason string) {
	l.c.mu.Lock()
	l.closeLocked(code, reason)
	l.c.mu.Unlock()
}

// closeLocked does closeWith's work; c.mu is held.
func (l *link) closeLocked(code int, reason string) {
	if l.send.closing {
		return
	}
	l.send.closing = true
	l.send.frames = append(l.send.frames, outFrame{kind: frameClose, data: websocket.FormatCloseMessage(code, closeReason(reason))})
	l.startWriterLocked()
	// However stuck the peer is, the connection ends within the write timeout.
	l.send.hardClose = time.AfterFunc(l.server.opts.writeTimeout, l.closeConn)
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

// finishClose ends a connection whose close frame has been written. The
// server closes the TCP connection, but not before the reader has seen the
// peer's answer (or closeLinger has passed): closing a socket with unread
// data makes the kernel reset the connection, and some peers then lose the
// close frame.
func (l *link) finishClose() {
	if cw, ok := l.batch.Conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite() // nothing more will be written
	}
	t := time.NewTimer(l.linger())
	defer t.Stop()
	select {
	case <-l.readerGone:
	case <-t.C:
	}
	l.closeConn()
}

// linger is how long a closing connection waits for the peer's answer.
func (l *link) linger() time.Duration {
	return min(closeLinger, l.server.opts.writeTimeout)
}

// closeConn closes the network connection, once.
func (l *link) closeConn() {
	l.closeOnce.Do(func() {
		l.conn.Close()
		close(l.connClosed)
		if l.c == nil {
			return // it never had a client, nor a close frame
		}
		l.c.mu.Lock()
		if l.send.hardClose != nil {
			l.send.hardClose.Stop()
		}
		l.c.mu.Unlock()
	})
}
