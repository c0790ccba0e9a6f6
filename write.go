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

// enqueue adds a frame to the client's queue and makes sure a writer runs.
// It never blocks. A full queue disconnects the client: it is too slow.
func (c *Client) enqueue(f outFrame) error {
	lim := &c.server.opts
	c.mu.Lock()
	if c.send.closing {
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
	if len(c.send.frames) >= lim.queueMessages || c.send.bytes+size > lim.queueBytes {
		n, bytes := len(c.send.frames), c.send.bytes
		clear(c.send.frames)
		c.send.frames, c.send.bytes = c.send.frames[:0], 0
		reason := fmt.Sprintf("too slow: %d messages (%d bytes) were waiting to be sent; the limit is %d messages or %d bytes",
			n, bytes, lim.queueMessages, lim.queueBytes)
		c.closeLocked(protocol.ClosePolicy, reason)
		c.mu.Unlock()
		c.server.logger().Warn("wszero: client disconnected: its send queue overflowed", "client", c.id, "queued", n, "bytes", bytes)
		return fmt.Errorf("%w: it was %s", ErrClosed, reason)
	}
	c.send.frames = append(c.send.frames, f)
	c.send.bytes += size
	if !c.send.held || len(c.send.frames) > heldFrames {
		c.startWriterLocked()
	}
	c.mu.Unlock()
	return nil
}

// startWriterLocked starts the writer goroutine unless one runs. c.mu is held.
func (c *Client) startWriterLocked() {
	if !c.send.writing {
		c.send.writing = true
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
	c.send.held = true
	c.mu.Unlock()
}

// releaseWrites ends holdWrites, writing what was queued meanwhile on the
// calling goroutine (the reader) when no writer runs.
func (c *Client) releaseWrites() {
	c.mu.Lock()
	c.send.held = false
	if c.send.writing || len(c.send.frames) == 0 {
		c.mu.Unlock()
		return
	}
	c.send.writing = true
	c.mu.Unlock()
	c.writeLoop(true)
}

// writeLoop writes queued frames, merging everything queued at once into a
// single write, and exits when the queue is empty. The reader runs it with
// once set: it then writes one batch, and leaves what comes after, and the
// end of the connection, to a writer goroutine.
func (c *Client) writeLoop(once bool) {
	var batch []outFrame
	for {
		c.mu.Lock()
		if len(c.send.frames) == 0 {
			c.send.writing = false
			switch {
			case cap(c.send.frames) > 64:
				c.send.frames = nil // let a burst's backlog go
			case cap(c.send.frames) == 0 && cap(batch) <= 64:
				c.send.frames = batch[:0] // for the next frames, instead of a new slice
			}
			c.mu.Unlock()
			return
		}
		if once && batch != nil {
			go c.writeLoop(false) // still writing
			c.mu.Unlock()
			return
		}
		batch, c.send.frames = c.send.frames, batch[:0]
		c.send.bytes = 0
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
			c.send.closing = true
			clear(c.send.frames)
			c.send.frames, c.send.bytes, c.send.writing = nil, 0, false
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

// closeWith queues a close frame behind what is already queued, after which
// the writer closes the connection.
func (c *Client) closeWith(code int, reason string) {
	c.mu.Lock()
	c.closeLocked(code, reason)
	c.mu.Unlock()
}

// closeLocked does closeWith's work; c.mu is held.
func (c *Client) closeLocked(code int, reason string) {
	if c.send.closing {
		return
	}
	c.send.closing = true
	c.send.frames = append(c.send.frames, outFrame{kind: frameClose, data: websocket.FormatCloseMessage(code, closeReason(reason))})
	c.startWriterLocked()
	// However stuck the peer is, the connection ends within the write timeout.
	c.send.hardClose = time.AfterFunc(c.server.opts.writeTimeout, c.closeConn)
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

// closeConn closes the network connection, once.
func (c *Client) closeConn() {
	c.closeOnce.Do(func() {
		c.conn.Close()
		close(c.connClosed)
		c.mu.Lock()
		if c.send.hardClose != nil {
			c.send.hardClose.Stop()
		}
		c.mu.Unlock()
	})
}
