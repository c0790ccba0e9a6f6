package cutproxy

import (
	"bufio"
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// wait bounds every wait in these tests, so a failing test cannot hang.
const wait = 5 * time.Second

// echoServer answers each line it reads with "name: line", and counts its
// connections.
type echoServer struct {
	name string
	ln   net.Listener
	wg   sync.WaitGroup

	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	opened  int // connections accepted in all
	ended   int // connections whose read ended
	changed chan struct{}
}

// startEcho starts an echo server on 127.0.0.1:0; t.Cleanup stops it.
func startEcho(t *testing.T, name string) *echoServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &echoServer{name: name, ln: ln, conns: make(map[net.Conn]struct{}), changed: make(chan struct{})}
	s.wg.Add(1)
	go s.acceptLoop()
	t.Cleanup(func() {
		_ = ln.Close()
		s.mu.Lock()
		for c := range s.conns {
			_ = c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func (s *echoServer) addr() string { return s.ln.Addr().String() }

func (s *echoServer) acceptLoop() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.opened++
		s.signalLocked()
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serve(c)
	}
}

func (s *echoServer) serve(c net.Conn) {
	defer s.wg.Done()
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			break
		}
		if _, err := c.Write([]byte(s.name + ": " + line)); err != nil {
			break
		}
	}
	_ = c.Close()
	s.mu.Lock()
	delete(s.conns, c)
	s.ended++
	s.signalLocked()
	s.mu.Unlock()
}

func (s *echoServer) signalLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// counts returns how many connections the server accepted in all and how
// many of them ended.
func (s *echoServer) counts() (opened, ended int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opened, s.ended
}

// waitFor waits until ok(opened, ended) holds, and fails t if it does not
// within wait.
func (s *echoServer) waitFor(t *testing.T, what string, ok func(opened, ended int) bool) {
	t.Helper()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		s.mu.Lock()
		opened, ended := s.opened, s.ended
		changed := s.changed
		s.mu.Unlock()
		if ok(opened, ended) {
			return
		}
		select {
		case <-changed:
		case <-timer.C:
			t.Fatalf("%s: %s did not happen in %v (opened %d, ended %d)", s.name, what, wait, opened, ended)
		}
	}
}

// client is a connection through the proxy.
type client struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.SetDeadline(time.Now().Add(wait)); err != nil {
		t.Fatal(err)
	}
	return &client{t: t, c: c, r: bufio.NewReader(c)}
}

// echo sends msg and checks that the reply is "want: msg".
func (c *client) echo(msg, want string) {
	c.t.Helper()
	if _, err := c.c.Write([]byte(msg + "\n")); err != nil {
		c.t.Fatalf("write: %v", err)
	}
	line, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	if got := strings.TrimSuffix(line, "\n"); got != want+": "+msg {
		c.t.Fatalf("reply %q, want %q", got, want+": "+msg)
	}
}

// ended checks that a read ends with an error that is not the deadline:
// the connection was closed.
func (c *client) ended() {
	c.t.Helper()
	var buf [64]byte
	n, err := c.r.Read(buf[:])
	if err == nil {
		c.t.Fatalf("read %q, want the connection to end", buf[:n])
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		c.t.Fatalf("read timed out, want the connection to end")
	}
}

func ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	t.Cleanup(cancel)
	return ctx
}

func TestForwards(t *testing.T) {
	s := startEcho(t, "a")
	p := Start(t, s.addr())
	if !strings.HasPrefix(p.Addr(), "127.0.0.1:") {
		t.Fatalf("Addr %q", p.Addr())
	}
	c := dial(t, p.Addr())
	c.echo("hello", "a")
	c.echo(strings.Repeat("x", 100000), "a")
	if got := p.Open(); got != 1 {
		t.Fatalf("Open %d, want 1", got)
	}
	if got := p.Accepted(); got != 1 {
		t.Fatalf("Accepted %d, want 1", got)
	}

	// The client closing ends the backend side too.
	_ = c.c.Close()
	s.waitFor(t, "the backend side ending", func(_, ended int) bool { return ended == 1 })
}

func TestBackendClosingEndsClient(t *testing.T) {
	s := startEcho(t, "a")
	p := Start(t, s.addr())
	c := dial(t, p.Addr())
	c.echo("hello", "a")
	s.mu.Lock()
	for sc := range s.conns {
		_ = sc.Close()
	}
	s.mu.Unlock()
	c.ended()
}

func TestCut(t *testing.T) {
	s := startEcho(t, "a")
	p := Start(t, s.addr())
	c1 := dial(t, p.Addr())
	c1.echo("one", "a")
	c2 := dial(t, p.Addr())
	c2.echo("two", "a")

	p.Cut()
	c1.ended()
	c2.ended()
	s.waitFor(t, "both backend sides ending", func(_, ended int) bool { return ended == 2 })
	if got := p.Open(); got != 0 {
		t.Fatalf("Open %d after Cut, want 0", got)
	}

	// Cut is not Down: a new connection goes through.
	c3 := dial(t, p.Addr())
	c3.echo("three", "a")
	if got := p.Accepted(); got != 3 {
		t.Fatalf("Accepted %d, want 3", got)
	}
}

func TestDownUp(t *testing.T) {
	s := startEcho(t, "a")
	p := Start(t, s.addr())
	c1 := dial(t, p.Addr())
	c1.echo("one", "a")

	p.Down()
	c1.ended()
	s.waitFor(t, "the backend side ending", func(_, ended int) bool { return ended == 1 })
	for range 3 {
		dial(t, p.Addr()).ended()
	}
	if got := p.Accepted(); got != 1 {
		t.Fatalf("Accepted %d while down, want 1", got)
	}
	if opened, _ := s.counts(); opened != 1 {
		t.Fatalf("the server saw %d connections, want 1", opened)
	}

	p.Up()
	c2 := dial(t, p.Addr())
	c2.echo("two", "a")
	if got := p.Accepted(); got != 2 {
		t.Fatalf("Accepted %d, want 2", got)
	}
}

func TestStall(t *testing.T) {
	s := startEcho(t, "a")
	t.Run("stall", func(t *testing.T) {
		p := Start(t, s.addr())
		c1 := dial(t, p.Addr())
		c1.echo("one", "a")

		p.Stall()
		c1.ended()
		if got := p.Open(); got != 0 {
			t.Fatalf("Open %d after Stall, want 0", got)
		}

		// A barrier: a later connection, cut, ends at the server; by then
		// the stale one would have ended too if the proxy had closed it.
		c2 := dial(t, p.Addr())
		c2.echo("two", "a")
		p.Cut()
		c2.ended()
		s.waitFor(t, "the second connection ending", func(_, ended int) bool { return ended >= 1 })
		if opened, ended := s.counts(); opened != 2 || ended != 1 {
			t.Fatalf("the server saw %d connections and %d ended, want 2 and 1: the stale one must stay open", opened, ended)
		}
		// Cut leaves the stale connection alone too.
		s.mu.Lock()
		if len(s.conns) != 1 {
			t.Errorf("the server has %d open connections, want 1", len(s.conns))
		}
		for sc := range s.conns {
			// The server can still write to it, as to any connection it
			// has not seen end (the barrier above is the real check).
			if _, err := sc.Write([]byte("into the void\n")); err != nil {
				t.Errorf("the server's write on the stale connection: %v", err)
			}
		}
		s.mu.Unlock()
	})
	// The subtest's cleanup closed the proxy, and with it the stale
	// connection.
	s.waitFor(t, "the stale connection ending at cleanup", func(_, ended int) bool { return ended == 2 })
}

func TestSetBackend(t *testing.T) {
	a := startEcho(t, "a")
	b := startEcho(t, "b")
	p := Start(t, a.addr())
	c1 := dial(t, p.Addr())
	c1.echo("one", "a")

	p.SetBackend(b.addr())
	c2 := dial(t, p.Addr())
	c2.echo("two", "b")
	c1.echo("still", "a") // an open connection keeps its backend

	p.Cut()
	c1.ended()
	c2.ended()
	a.waitFor(t, "the connection ending", func(_, ended int) bool { return ended == 1 })
	b.waitFor(t, "the connection ending", func(_, ended int) bool { return ended == 1 })
}

func TestBackendDialFails(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := ln.Addr().String()
	_ = ln.Close()

	p := Start(t, gone)
	dial(t, p.Addr()).ended()
	if got := p.Accepted(); got != 0 {
		t.Fatalf("Accepted %d, want 0", got)
	}

	s := startEcho(t, "a")
	p.SetBackend(s.addr())
	dial(t, p.Addr()).echo("now", "a")
}

func TestWaitAccepted(t *testing.T) {
	s := startEcho(t, "a")
	p := Start(t, s.addr())
	if err := p.WaitAccepted(ctx(t), 0); err != nil {
		t.Fatalf("WaitAccepted(0): %v", err)
	}
	done, cancel := context.WithCancel(t.Context())
	cancel()
	if err := p.WaitAccepted(done, 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitAccepted on a cancelled context: %v, want context.Canceled", err)
	}

	// Dialing returns once the kernel has the connection, before the proxy
	// forwards it; WaitAccepted waits for that.
	for i := 1; i <= 3; i++ {
		dial(t, p.Addr())
		if err := p.WaitAccepted(ctx(t), i); err != nil {
			t.Fatalf("WaitAccepted(%d): %v", i, err)
		}
		if got := p.Open(); got != i {
			t.Fatalf("Open %d after WaitAccepted(%d), want %d", got, i, i)
		}
	}

	// A waiter in another goroutine wakes on the accept.
	errc := make(chan error, 1)
	wctx := ctx(t)
	go func() { errc <- p.WaitAccepted(wctx, 4) }()
	dial(t, p.Addr())
	if err := <-errc; err != nil {
		t.Fatalf("WaitAccepted(4): %v", err)
	}

	// After WaitAccepted, Cut reaches the new connection.
	p.Cut()
	s.waitFor(t, "every connection ending", func(_, ended int) bool { return ended == 4 })
}

func TestWaitAcceptedAfterCleanup(t *testing.T) {
	s := startEcho(t, "a")
	var p *Proxy
	t.Run("proxy", func(t *testing.T) { p = Start(t, s.addr()) })
	if err := p.WaitAccepted(ctx(t), 1); !errors.Is(err, errClosed) {
		t.Fatalf("WaitAccepted after cleanup: %v, want errClosed", err)
	}
}
