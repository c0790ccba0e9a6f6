// Package loadgen is the benchmark's load generator: many WebSocket client
// connections served by one epoll event loop, so that the generator's cost
// per message stays far below the server's.
//
// The handshake is done by blocking calls when a connection opens; after
// that every read is done by the loop, straight from the socket with
// golang.org/x/sys/unix, and frames are parsed in place. Writes (requests,
// small and rare next to what is read) go through the net.Conn.
//
// A connection speaks a Dialect: Plain for the Go peers, SocketIO for the
// Socket.IO peer. The scenarios are the same for both.
package loadgen

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Conn is one client connection.
type Conn struct {
	ID        int
	mu        sync.Mutex // serialises writes
	nc        *net.TCPConn
	fd        int
	left      []byte // the start of a frame not yet whole
	dialect   Dialect
	maxSilent time.Duration // how long the server lets the connection go unread; 0: no limit
	seen      uint64        // Session: numbered messages received (the loop's)
	acked     uint64        // Session: the seen last acknowledged
}

// Loop reads from its connections and calls OnMessage with each text
// frame's payload, on the loop's goroutine.
type Loop struct {
	epfd  int
	conns map[int]*Conn // by fd
	mu    sync.Mutex
	buf   []byte
	wake  [2]int // a pipe that ends Run
	// OnMessage is called with each text message; payload is only valid
	// during the call.
	OnMessage func(c *Conn, payload []byte)
	// Errors counts protocol errors and connections closed by the server.
	Errors int
}

// NewLoop returns a loop with no connections.
func NewLoop() (*Loop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	l := &Loop{epfd: epfd, conns: map[int]*Conn{}, buf: make([]byte, 256<<10)}
	if err := unix.Pipe2(l.wake[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		return nil, err
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(l.wake[0])}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, l.wake[0], &ev); err != nil {
		return nil, err
	}
	return l, nil
}

// Dial opens a WebSocket connection to the server at addr, at the path
// its dialect uses (ws://addr/ws for Plain), does the dialect's own
// handshake and adds the connection to the loop. It may be called from
// any goroutine.
func (l *Loop) Dial(addr string, id int, d Dialect) (*Conn, error) {
	nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	tc := nc.(*net.TCPConn)
	_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
	req := "GET " + d.path() + " HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" + d.header() + "\r\n"
	if _, err := tc.Write([]byte(req)); err != nil {
		tc.Close()
		return nil, err
	}
	// Read the response a byte at a time: nothing after it may be taken
	// from the socket, since the loop reads the rest.
	var resp []byte
	one := make([]byte, 1)
	for !bytes.HasSuffix(resp, []byte("\r\n\r\n")) {
		if _, err := tc.Read(one); err != nil {
			tc.Close()
			return nil, fmt.Errorf("handshake: %w", err)
		}
		resp = append(resp, one[0])
		if len(resp) > 4096 {
			tc.Close()
			return nil, errors.New("handshake: response too long")
		}
	}
	status, _ := bufio.NewReader(bytes.NewReader(resp)).ReadString('\n')
	if !strings.Contains(status, " 101 ") {
		tc.Close()
		return nil, fmt.Errorf("handshake: %s", strings.TrimSpace(status))
	}
	c := &Conn{ID: id, nc: tc, fd: -1, dialect: d}
	switch d {
	case SocketIO:
		if c.maxSilent, err = c.openSocketIO(tc); err != nil {
			tc.Close()
			return nil, err
		}
	case Session:
		if err := c.openSession(tc); err != nil {
			tc.Close()
			return nil, err
		}
	}
	_ = tc.SetDeadline(time.Time{})
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil, err
	}
	_ = rc.Control(func(fd uintptr) { c.fd = int(fd) })
	l.mu.Lock()
	l.conns[c.fd] = c
	l.mu.Unlock()
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(c.fd)}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, c.fd, &ev); err != nil {
		tc.Close()
		return nil, err
	}
	return c, nil
}

// Send writes payload, one of the application's messages, as one masked
// text frame, wrapped as its dialect wants. It may be called from any
// goroutine.
func (c *Conn) Send(payload []byte) error {
	if c.dialect == SocketIO {
		return c.sendEvent(payload)
	}
	return c.write(nil, payload, nil)
}

// MaxSilence is how long the server lets the connection go unread before
// it closes it (for SocketIO, the open packet's pingInterval+pingTimeout:
// its pings are answered only while the loop runs); 0 means no limit.
func (c *Conn) MaxSilence() time.Duration { return c.maxSilent }

// write sends pre, payload and post as one masked text frame.
func (c *Conn) write(pre, payload, post []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var hdr [14]byte
	hdr[0] = 0x81
	n := 2
	switch l := len(pre) + len(payload) + len(post); {
	case l < 126:
		hdr[1] = 0x80 | byte(l)
	case l < 1<<16:
		hdr[1] = 0x80 | 126
		hdr[2], hdr[3] = byte(l>>8), byte(l)
		n = 4
	default:
		return errors.New("payload too long for the generator")
	}
	// A zero masking key: the payload goes as it is. Servers do not check
	// the key's randomness, which only matters to proxies.
	n += 4
	frame := make([]byte, 0, n+len(pre)+len(payload)+len(post))
	frame = append(frame, hdr[:n]...)
	frame = append(frame, pre...)
	frame = append(frame, payload...)
	frame = append(frame, post...)
	_, err := c.nc.Write(frame)
	return err
}

// Close closes the connection.
func (c *Conn) Close() error { return c.nc.Close() }

// Stop makes Run return.
func (l *Loop) Stop() { _, _ = unix.Write(l.wake[1], []byte{1}) }

// Run reads and parses frames until Stop is called.
func (l *Loop) Run() {
	events := make([]unix.EpollEvent, 1024)
	for {
		n, err := unix.EpollWait(l.epfd, events, -1)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return
		}
		for i := 0; i < n; i++ {
			fd := int(events[i].Fd)
			if fd == l.wake[0] {
				return
			}
			l.mu.Lock()
			c := l.conns[fd]
			l.mu.Unlock()
			if c != nil {
				l.read(c)
			}
		}
	}
}

// read takes what the socket holds and hands each whole frame on.
func (l *Loop) read(c *Conn) {
	k := copy(l.buf, c.left)
	m, err := unix.Read(c.fd, l.buf[k:])
	if err != nil {
		if errors.Is(err, unix.EAGAIN) {
			return
		}
		l.drop(c)
		return
	}
	if m == 0 {
		l.drop(c)
		return
	}
	data := l.buf[:k+m]
	for {
		if len(data) < 2 {
			break
		}
		op := data[0] & 0x0f
		plen := int(data[1] & 0x7f)
		h := 2
		switch plen {
		case 126:
			if len(data) < 4 {
				goto partial
			}
			plen = int(data[2])<<8 | int(data[3])
			h = 4
		case 127:
			if len(data) < 10 {
				goto partial
			}
			plen = 0
			for _, b := range data[2:10] {
				plen = plen<<8 | int(b)
			}
			h = 10
		}
		if data[1]&0x80 != 0 || data[0]&0x80 == 0 || plen > len(l.buf)/2 {
			l.Errors++ // masked, fragmented or huge: not what these servers send
			l.drop(c)
			return
		}
		if len(data) < h+plen {
			break
		}
		switch op {
		case 1:
			switch c.dialect {
			case Plain:
				l.OnMessage(c, data[h:h+plen])
			case Session:
				if !l.session(c, data[h:h+plen]) {
					return
				}
			default:
				if !l.socketIO(c, data[h:h+plen]) {
					return
				}
			}
		case 8:
			l.Errors++
			l.drop(c)
			return
		}
		data = data[h+plen:]
	}
partial:
	c.left = append(c.left[:0], data...)
}

// drop forgets a connection the server closed.
func (l *Loop) drop(c *Conn) {
	_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, c.fd, nil)
	l.mu.Lock()
	delete(l.conns, c.fd)
	l.mu.Unlock()
	c.nc.Close()
}

// CloseAll closes every connection and the loop's own descriptors; call it
// after Run has returned.
func (l *Loop) CloseAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		c.nc.Close()
	}
	unix.Close(l.epfd)
	unix.Close(l.wake[0])
	unix.Close(l.wake[1])
}
