// Package cutproxy is a TCP proxy that a test controls, to simulate network
// blips between a client (a browser or the Go client) and a server, all on
// 127.0.0.1. The test can cut every connection, take the network down and
// bring it back, leave connections stale (the client side closed, the
// server side open and silent), and send new connections to another
// server.
package cutproxy

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// state is where a link is in its life.
type state int

const (
	// forwarding: both sides open (the backend may still be dialing).
	forwarding state = iota
	// stalled: the client side is closed; the backend side stays open and
	// silent until cleanup.
	stalled
	// closed: both sides are closed.
	closed
)

// link is one client connection and the backend connection made for it.
type link struct {
	client  net.Conn
	backend net.Conn // nil while dialing
	state   state
}

// Proxy is a TCP proxy started by Start. Its methods are safe to call from
// any goroutine.
type Proxy struct {
	t      testing.TB
	ln     net.Listener
	ctx    context.Context // ends at cleanup, to stop backend dials
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine the proxy started

	mu       sync.Mutex
	backend  string
	down     bool
	closed   bool
	links    map[*link]struct{} // links not yet closed, stalled ones too
	accepted int
	changed  chan struct{} // closed and replaced on each accept and at cleanup
}

// errClosed is what WaitAccepted returns once the proxy is cleaned up.
var errClosed = errors.New("cutproxy: proxy closed")

// Start listens on 127.0.0.1:0 and forwards each accepted TCP connection
// to backend (host:port). t.Cleanup closes the listener and every
// connection and waits for every goroutine the proxy started.
func Start(t testing.TB, backend string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("cutproxy: listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{
		t:       t,
		ln:      ln,
		ctx:     ctx,
		cancel:  cancel,
		backend: backend,
		links:   make(map[*link]struct{}),
		changed: make(chan struct{}),
	}
	p.wg.Add(1)
	go p.acceptLoop()
	t.Cleanup(p.close)
	return p
}

// Addr returns the address of the listener, "127.0.0.1:port".
func (p *Proxy) Addr() string {
	return p.ln.Addr().String()
}

// SetBackend makes connections accepted from now on go to addr (a second
// server node, say). Connections already open keep their backend.
func (p *Proxy) SetBackend(addr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.backend = addr
}

// Cut closes every current connection on both sides at once, so the
// client and the backend both see the connection end. Stalled connections
// are left as they are (their backend side closes at cleanup).
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cutLocked()
}

// Down takes the network down: it cuts every current connection, and until
// Up, new connections are accepted and closed at once, so the client sees
// its attempt fail. They do not count in Accepted.
func (p *Proxy) Down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	p.cutLocked()
}

// Up brings the network back: new connections are forwarded again.
func (p *Proxy) Up() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}

// Stall makes every current connection stale: it stops forwarding in both
// directions and closes only the client side. The backend side stays open
// and silent, so the server does not notice. Closing it happens at
// cleanup.
func (p *Proxy) Stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for l := range p.links {
		if l.state != forwarding {
			continue
		}
		l.state = stalled
		if l.backend != nil {
			// A deadline in the past makes the pending and future reads
			// and writes of the copying goroutines fail, without closing
			// the socket.
			_ = l.backend.SetDeadline(time.Unix(1, 0))
		}
		_ = l.client.Close()
	}
}

// Open returns how many forwarded connections are open now (both sides
// still forwarding).
func (p *Proxy) Open() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for l := range p.links {
		if l.state == forwarding && l.backend != nil {
			n++
		}
	}
	return n
}

// Accepted returns how many connections were forwarded in all: a
// connection counts once its backend connection is made, so after
// WaitAccepted returns, Cut and Stall reach it. Connections refused while
// down, or whose backend dial failed, do not count.
func (p *Proxy) Accepted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

// WaitAccepted waits until Accepted() >= n, and returns nil then; or until
// ctx ends, and returns ctx.Err(); or until the proxy is cleaned up, and
// returns an error.
func (p *Proxy) WaitAccepted(ctx context.Context, n int) error {
	for {
		p.mu.Lock()
		if p.accepted >= n {
			p.mu.Unlock()
			return nil
		}
		if p.closed {
			p.mu.Unlock()
			return errClosed
		}
		changed := p.changed
		p.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// acceptLoop accepts connections until the listener is closed.
func (p *Proxy) acceptLoop() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			p.mu.Lock()
			closing := p.closed
			p.mu.Unlock()
			if !closing {
				p.t.Errorf("cutproxy: accept: %v", err)
			}
			return
		}
		p.mu.Lock()
		if p.closed || p.down {
			p.mu.Unlock()
			_ = c.Close()
			continue
		}
		l := &link{client: c}
		p.links[l] = struct{}{}
		addr := p.backend
		p.wg.Add(1)
		p.mu.Unlock()
		go p.serve(l, addr)
	}
}

// serve dials the backend for l and starts forwarding.
func (p *Proxy) serve(l *link, addr string) {
	defer p.wg.Done()
	var d net.Dialer
	b, err := d.DialContext(p.ctx, "tcp", addr)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		if l.state != closed {
			l.state = closed
			_ = l.client.Close()
			delete(p.links, l)
		}
		return
	}
	l.backend = b
	switch l.state {
	case closed: // cut or cleaned up while dialing
		_ = b.Close()
		return
	case stalled: // stalled while dialing: keep b open and silent
		return
	}
	p.accepted++
	p.signalLocked()
	p.wg.Add(2)
	go p.copy(l, b, l.client)
	go p.copy(l, l.client, b)
}

// copy forwards from src to dst; when it ends, it ends l.
func (p *Proxy) copy(l *link, dst io.Writer, src io.Reader) {
	defer p.wg.Done()
	_, _ = io.Copy(dst, src)
	p.mu.Lock()
	defer p.mu.Unlock()
	if l.state == forwarding {
		p.closeLocked(l)
	}
}

// cutLocked closes both sides of every forwarding link.
func (p *Proxy) cutLocked() {
	for l := range p.links {
		if l.state == forwarding {
			p.closeLocked(l)
		}
	}
}

// closeLocked closes both sides of l and forgets it.
func (p *Proxy) closeLocked(l *link) {
	l.state = closed
	_ = l.client.Close()
	if l.backend != nil {
		_ = l.backend.Close()
	}
	delete(p.links, l)
}

// signalLocked wakes every WaitAccepted.
func (p *Proxy) signalLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// close closes the listener and every connection, and waits for every
// goroutine the proxy started.
func (p *Proxy) close() {
	p.mu.Lock()
	p.closed = true
	for l := range p.links {
		p.closeLocked(l)
	}
	p.signalLocked()
	p.mu.Unlock()
	p.cancel()
	_ = p.ln.Close()
	p.wg.Wait()
}
