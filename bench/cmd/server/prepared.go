package main

import (
	"bufio"
	"encoding/json"
	"net"
	"net/http"
	"sync"

	"github.com/gorilla/websocket"
)

// The prepared hub is gorilla done well: a broadcast is framed once as a
// PreparedMessage, members are kept under a read-write lock (no hub
// goroutine), and each client's persistent writer writes everything queued
// into a buffer over the connection and flushes it with one system call.

type preparedHub struct {
	mu      sync.RWMutex
	clients map[*preparedClient]struct{}
}

type preparedClient struct {
	conn *websocket.Conn
	bw   *bufio.Writer
	send chan *websocket.PreparedMessage
}

// bufferedConn sends writes to a bufio.Writer that the writer flushes.
type bufferedConn struct {
	net.Conn
	bw *bufio.Writer
}

func (b *bufferedConn) Write(p []byte) (int, error) { return b.bw.Write(p) }

// hijacker wraps the hijacked connection in a bufferedConn.
type hijacker struct {
	http.ResponseWriter
	out **bufferedConn
}

func (h hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, rw, err := h.ResponseWriter.(http.Hijacker).Hijack()
	if err != nil {
		return nil, nil, err
	}
	bc := &bufferedConn{Conn: conn}
	bc.bw = bufio.NewWriterSize(conn, 4096)
	*h.out = bc
	return bc, rw, nil
}

func newPrepared() http.Handler {
	h := &preparedHub{clients: map[*preparedClient]struct{}{}}
	up := websocket.Upgrader{ReadBufferSize: 1024, WriteBufferSize: 1024, WriteBufferPool: &sync.Pool{}}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var bc *bufferedConn
		conn, err := up.Upgrade(hijacker{w, &bc}, r, nil)
		if err != nil {
			return
		}
		// The upgrade's 101 response went through the buffer.
		if bc.bw.Flush() != nil {
			conn.Close()
			return
		}
		c := &preparedClient{conn: conn, bw: bc.bw, send: make(chan *websocket.PreparedMessage, 1024)}
		h.mu.Lock()
		h.clients[c] = struct{}{}
		h.mu.Unlock()
		go c.writer()
		go h.read(c)
	})
}

func (h *preparedHub) read(c *preparedClient) {
	defer func() {
		h.mu.Lock()
		if _, ok := h.clients[c]; ok {
			delete(h.clients, c)
			close(c.send)
		}
		h.mu.Unlock()
		c.conn.Close()
	}()
	for {
		_, data, err := c.conn.ReadMessage()
		if err != nil {
			return
		}
		var m in
		if json.Unmarshal(data, &m) != nil {
			continue
		}
		switch m.Op {
		case "echo":
			out, _ := json.Marshal(echoOut{"echo", m.Seq, m.Text})
			pm, _ := websocket.NewPreparedMessage(websocket.TextMessage, out)
			h.mu.RLock()
			if _, ok := h.clients[c]; ok {
				h.offer(c, pm)
			}
			h.mu.RUnlock()
		case "pub":
			out, _ := json.Marshal(msgOut{"msg", m.Seq, m.Ts, m.Text})
			pm, _ := websocket.NewPreparedMessage(websocket.TextMessage, out)
			h.mu.RLock()
			for c := range h.clients {
				h.offer(c, pm)
			}
			h.mu.RUnlock()
		}
	}
}

// offer queues pm for c, dropping the client when its queue is full.
func (h *preparedHub) offer(c *preparedClient, pm *websocket.PreparedMessage) {
	select {
	case c.send <- pm:
	default:
		go c.conn.Close()
	}
}

func (c *preparedClient) writer() {
	defer c.conn.Close()
	for pm := range c.send {
		if c.conn.WritePreparedMessage(pm) != nil {
			return
		}
	more:
		for {
			select {
			case pm, ok := <-c.send:
				if !ok {
					break more
				}
				if c.conn.WritePreparedMessage(pm) != nil {
					return
				}
			default:
				break more
			}
		}
		if c.bw.Flush() != nil {
			return
		}
	}
}
