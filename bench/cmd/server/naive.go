package main

import (
	"encoding/json"
	"net/http"

	"github.com/gorilla/websocket"
)

// The naive hub is gorilla's chat example without its newline-joined
// frames: a hub goroutine, a reader and a writer goroutine per client, one
// WriteMessage (one system call) per message, nothing prepared.

type naiveHub struct {
	clients    map[*naiveClient]bool
	broadcast  chan []byte
	register   chan *naiveClient
	unregister chan *naiveClient
}

type naiveClient struct {
	hub  *naiveHub
	conn *websocket.Conn
	send chan []byte
}

func newNaive() http.Handler {
	h := &naiveHub{
		clients:    map[*naiveClient]bool{},
		broadcast:  make(chan []byte, 256),
		register:   make(chan *naiveClient),
		unregister: make(chan *naiveClient),
	}
	go h.run()
	up := websocket.Upgrader{ReadBufferSize: 1024, WriteBufferSize: 1024}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		c := &naiveClient{hub: h, conn: conn, send: make(chan []byte, 1024)}
		h.register <- c
		go c.writePump()
		go c.readPump()
	})
}

func (h *naiveHub) run() {
	for {
		select {
		case c := <-h.register:
			h.clients[c] = true
		case c := <-h.unregister:
			if h.clients[c] {
				delete(h.clients, c)
				close(c.send)
			}
		case m := <-h.broadcast:
			for c := range h.clients {
				select {
				case c.send <- m:
				default:
					close(c.send)
					delete(h.clients, c)
				}
			}
		}
	}
}

func (c *naiveClient) readPump() {
	defer func() {
		c.hub.unregister <- c
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
			c.send <- out
		case "pub":
			out, _ := json.Marshal(msgOut{"msg", m.Seq, m.Ts, m.Text})
			c.hub.broadcast <- out
		}
	}
}

func (c *naiveClient) writePump() {
	defer c.conn.Close()
	for m := range c.send {
		if err := c.conn.WriteMessage(websocket.TextMessage, m); err != nil {
			return
		}
	}
	_ = c.conn.WriteMessage(websocket.CloseMessage, []byte{})
}
