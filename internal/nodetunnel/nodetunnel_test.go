package nodetunnel

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testTimeout bounds every wait.
const testTimeout = 10 * time.Second

// pair starts a transport and two nodes on it, A and B, with their
// configs.
func pair(t testing.TB, cfgA, cfgB Config) (*memNode, *memNode) {
	n := newMemNet(t)
	return n.add("nodeA", cfgA), n.add("nodeB", cfgB)
}

// openTunnel opens a tunnel from one node to another with hello and
// returns both ends, closed when the test ends.
func openTunnel(t testing.TB, from, to *memNode, hello string) (net.Conn, net.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	here, err := from.tun.Open(ctx, to.id, []byte(hello))
	require.NoError(t, err)
	t.Cleanup(func() { here.Close() })
	there := accept(t, to)
	require.Equal(t, hello, string(there.hello))
	require.Equal(t, from.id, there.from)
	t.Cleanup(func() { there.conn.Close() })
	return here, there.conn
}

// accept returns the next tunnel that node accepted.
func accept(t testing.TB, node *memNode) accepted {
	t.Helper()
	select {
	case a := <-node.accepted:
		return a
	case <-time.After(testTimeout):
		t.Fatalf("node %s accepted no tunnel in %v", node.id, testTimeout)
		return accepted{}
	}
}

// within runs f on a goroutine and returns its error, failing the test if
// it takes longer than testTimeout.
func within(t testing.TB, what string, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(testTimeout):
		t.Fatalf("%s took more than %v", what, testTimeout)
		return nil
	}
}

// readErr reads from c until it fails, and returns the error.
func readErr(t testing.TB, c net.Conn) error {
	t.Helper()
	return within(t, "reading to the end", func() error {
		_, err := io.Copy(io.Discard, c)
		if err == nil {
			return io.EOF // io.Copy's nil is Read's io.EOF
		}
		return err
	})
}

// writeRandom writes size random bytes (from seed) to c in chunks of
// random sizes, and returns their checksum.
func writeRandom(c net.Conn, seed uint64, size int) ([32]byte, error) {
	r := rand.New(rand.NewPCG(seed, 1))
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	for rest := data; len(rest) > 0; {
		n := min(len(rest), 1+r.IntN(100_000))
		if _, err := c.Write(rest[:n]); err != nil {
			return [32]byte{}, err
		}
		rest = rest[n:]
	}
	return sha256.Sum256(data), nil
}

// readRandom reads size bytes from c in reads of random sizes, and
// returns their checksum.
func readRandom(c net.Conn, seed uint64, size int) ([32]byte, error) {
	r := rand.New(rand.NewPCG(seed, 2))
	h := sha256.New()
	buf := make([]byte, 100_000)
	for got := 0; got < size; {
		n, err := c.Read(buf[:min(size-got, 1+r.IntN(len(buf)))])
		h.Write(buf[:n])
		got += n
		if err != nil {
			return [32]byte{}, err
		}
	}
	return [32]byte(h.Sum(nil)), nil
}

// counting writes a stream of counting bytes to c until a Write fails or
// stop is closed; the error goes to the channel it returns.
func counting(c net.Conn, stop <-chan struct{}) <-chan error {
	wrote := make(chan error, 1)
	go func() {
		var k byte
		buf := make([]byte, 1000)
		for {
			for i := range buf {
				buf[i] = k
				k++
			}
			if _, err := c.Write(buf); err != nil {
				wrote <- err
				return
			}
			select {
			case <-stop:
				wrote <- nil
				return
			default:
			}
		}
	}()
	return wrote
}

// countingReader reads c and checks that it holds counting bytes, until
// Read fails; the error and the bytes read go to the channel it returns.
func countingReader(c net.Conn) <-chan readResult {
	read := make(chan readResult, 1)
	go func() {
		var k byte
		total := 0
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			for _, b := range buf[:n] {
				if b != k {
					read <- readResult{total, errors.New("a byte is missing or out of order")}
					return
				}
				k++
				total++
			}
			if err != nil {
				read <- readResult{total, err}
				return
			}
		}
	}()
	return read
}

// readResult is what countingReader read.
type readResult struct {
	n   int
	err error
}

func TestTunnelCarriesBytesBothWaysInOrder(t *testing.T) {
	small := Config{Window: MinWindow}
	for _, tc := range []struct {
		name       string
		cfgA, cfgB Config
	}{
		{"default window", Config{}, Config{}},
		{"small windows", small, small},
		{"windows that differ", small, Config{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := pair(t, tc.cfgA, tc.cfgB)
			hello := "resume session 42\x00\xff"
			ca, cb := openTunnel(t, a, b, hello)
			require.Equal(t, "nodeA", ca.LocalAddr().String())
			require.Equal(t, "nodeB", ca.RemoteAddr().String())
			require.Equal(t, "nodeB", cb.LocalAddr().String())
			require.Equal(t, "nodeA", cb.RemoteAddr().String())

			const aToB, bToA = 3 << 20, 2<<20 + 12345
			type result struct {
				sum [32]byte
				err error
			}
			results := make(chan result, 4)
			run := func(f func() ([32]byte, error)) {
				go func() { s, err := f(); results <- result{s, err} }()
			}
			run(func() ([32]byte, error) { return writeRandom(ca, 1, aToB) })
			run(func() ([32]byte, error) { return readRandom(cb, 1, aToB) })
			run(func() ([32]byte, error) { return writeRandom(cb, 2, bToA) })
			run(func() ([32]byte, error) { return readRandom(ca, 2, bToA) })
			sums := map[[32]byte]int{}
			for range 4 {
				select {
				case r := <-results:
					require.NoError(t, r.err)
					sums[r.sum]++
				case <-time.After(testTimeout):
					t.Fatalf("the bytes took more than %v", testTimeout)
				}
			}
			require.Len(t, sums, 2, "each direction's reader has the writer's checksum")
			for _, n := range sums {
				require.Equal(t, 2, n)
			}

			require.NoError(t, ca.Close())
			require.ErrorIs(t, readErr(t, cb), io.EOF)
		})
	}
}

func TestTunnelsBothWaysWithTheSameNumbersStayApart(t *testing.T) {
	a, b := pair(t, Config{}, Config{})
	// Both nodes number their tunnels alike: each tunnel is still told
	// apart by which end opened it.
	a.tun.nextID, b.tun.nextID = 7, 7
	const each = 8
	type end struct {
		conn  net.Conn
		hello string
	}
	opened := make(chan end, 2*each)
	errs := make(chan error, 2*each)
	for i := range each {
		for _, dir := range [][2]*memNode{{a, b}, {b, a}} {
			hello := fmt.Sprintf("%s→%s #%d", dir[0].id, dir[1].id, i)
			go func() {
				c, err := dir[0].tun.Open(t.Context(), dir[1].id, []byte(hello))
				if err != nil {
					errs <- err
					return
				}
				opened <- end{c, hello}
			}()
		}
	}
	ends := map[string]net.Conn{}
	for range 2 * each {
		select {
		case e := <-opened:
			t.Cleanup(func() { e.conn.Close() })
			ends[e.hello] = e.conn
		case err := <-errs:
			t.Fatal(err)
		case <-time.After(testTimeout):
			t.Fatal("the tunnels did not open")
		}
	}
	for range 2 * each {
		var got accepted
		select {
		case got = <-a.accepted:
		case got = <-b.accepted:
		case <-time.After(testTimeout):
			t.Fatal("the tunnels were not accepted")
		}
		t.Cleanup(func() { got.conn.Close() })
		// Each accepted end echoes its hello to its opener.
		go func() { _, _ = got.conn.Write(got.hello) }()
	}
	for hello, c := range ends {
		buf := make([]byte, len(hello))
		_, err := io.ReadFull(c, buf)
		require.NoError(t, err)
		require.Equal(t, hello, string(buf))
	}
}

func TestTunnelClosedEndGivesEOFAfterAllData(t *testing.T) {
	for _, closer := range []string{"opener", "acceptor"} {
		t.Run("closed by the "+closer, func(t *testing.T) {
			a, b := pair(t, Config{}, Config{})
			writer, reader := openTunnel(t, a, b, "hi")
			if closer == "acceptor" {
				writer, reader = reader, writer
			}
			const size = 1 << 20 // more than the window: the writer waits for the reader
			wrote := make(chan error, 1)
			var sum [32]byte
			go func() {
				var err error
				sum, err = writeRandom(writer, 7, size)
				if err == nil {
					err = writer.Close()
				}
				wrote <- err
			}()
			got, err := readRandom(reader, 0, size)
			require.NoError(t, err)
			require.NoError(t, <-wrote)
			require.Equal(t, sum, got)
			n, err := reader.Read(make([]byte, 10))
			require.Equal(t, 0, n)
			require.ErrorIs(t, err, io.EOF)
			_, err = reader.Write([]byte("too late"))
			require.ErrorIs(t, err, io.ErrClosedPipe)

			_, err = writer.Read(make([]byte, 10))
			require.ErrorIs(t, err, net.ErrClosed)
			_, err = writer.Write([]byte("x"))
			require.ErrorIs(t, err, net.ErrClosed)
			require.NoError(t, writer.Close(), "a second Close")
		})
	}
}

func TestTunnelRefusedGivesTheNodesWords(t *testing.T) {
	a, b := pair(t, Config{}, Config{})
	b.set(func(b *memNode) { b.refuse = "no session with that ID here: it expired" })
	c, err := a.tun.Open(t.Context(), b.id, []byte("resume 42"))
	require.Nil(t, c)
	require.ErrorContains(t, err, "no session with that ID here: it expired")
	var refused *RefusedError
	require.ErrorAs(t, err, &refused)
	require.Equal(t, "no session with that ID here: it expired", refused.Reason)
	require.Equal(t, "nodeB", refused.Node)
}

func TestTunnelToUnknownNodeFailsAtOnce(t *testing.T) {
	a, _ := pair(t, Config{}, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	_, err := a.tun.Open(ctx, "nobody", nil)
	require.ErrorIs(t, err, ErrNoNode)
	require.ErrorContains(t, err, "nobody")
	require.NoError(t, ctx.Err(), "it did not wait for the context")

	_, err = a.tun.Open(ctx, a.id, nil)
	require.ErrorContains(t, err, "another node")
	_, err = a.tun.Open(ctx, "nodeB", make([]byte, MaxHello+1))
	require.ErrorContains(t, err, "hello")
}

func TestTunnelToANodeThatNeverAnswersFails(t *testing.T) {
	// B is known, but what is sent to it is lost: A gives up after three
	// of its keepalive intervals, even without a deadline.
	a, b := pair(t, Config{Keepalive: 20 * time.Millisecond}, Config{})
	b.set(func(b *memNode) { b.cut = true })
	err := within(t, "Open", func() error {
		_, err := a.tun.Open(context.Background(), b.id, []byte("anyone?"))
		return err
	})
	require.ErrorIs(t, err, ErrNoNode)
	require.ErrorContains(t, err, "has not answered")
}

func TestTunnelGivenUpIsClosedAtTheNodeThatAcceptsItLate(t *testing.T) {
	a, b := pair(t, Config{}, Config{})
	release := make(chan struct{})
	b.set(func(b *memNode) { b.wait = release }) // B takes its time to accept
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := a.tun.Open(ctx, b.id, []byte("late"))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	close(release)
	late := accept(t, b)
	defer late.conn.Close()
	// Closed at once, not after the keepalives (5 s) go unanswered.
	err = readErr(t, late.conn)
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	require.ErrorContains(t, err, "gave up")
}

func TestTunnelWhoseAnswerIsLostBreaks(t *testing.T) {
	fast := Config{Keepalive: 20 * time.Millisecond}
	a, b := pair(t, Config{}, fast)
	lost := a.loseOnce(kindAccept, "")
	// B accepts, but its answer is lost: its first keepalive tells A.
	_, err := a.tun.Open(t.Context(), b.id, []byte("hi"))
	<-lost
	require.ErrorIs(t, err, ErrTunnelBroken)
	require.ErrorContains(t, err, "were lost")
	there := accept(t, b)
	defer there.conn.Close()
	require.ErrorIs(t, readErr(t, there.conn), io.ErrUnexpectedEOF, "A told B that it gave up")
}

func TestTunnelReadDeadline(t *testing.T) {
	a, b := pair(t, Config{}, Config{})
	ca, cb := openTunnel(t, a, b, "hi")
	buf := make([]byte, 10)

	require.NoError(t, ca.SetReadDeadline(time.Now().Add(20*time.Millisecond)))
	_, err := ca.Read(buf)
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	require.True(t, ne.Timeout())

	// A deadline set while a Read waits ends it.
	require.NoError(t, ca.SetReadDeadline(time.Time{}))
	blocked := make(chan error, 1)
	go func() { _, err := ca.Read(buf); blocked <- err }()
	require.NoError(t, ca.SetReadDeadline(time.Now().Add(30*time.Millisecond)))
	require.ErrorIs(t, within(t, "a Read past its deadline", func() error { return <-blocked }), os.ErrDeadlineExceeded)

	// Without a deadline the tunnel goes on: nothing was lost.
	require.NoError(t, ca.SetDeadline(time.Time{}))
	_, err = cb.Write([]byte("still here"))
	require.NoError(t, err)
	got := make([]byte, len("still here"))
	_, err = io.ReadFull(ca, got)
	require.NoError(t, err)
	require.Equal(t, "still here", string(got))
}

func TestTunnelWriteWaitsForTheReaderUntilItsDeadline(t *testing.T) {
	a, b := pair(t, Config{}, Config{Window: MinWindow})
	ca, cb := openTunnel(t, a, b, "hi")
	data := make([]byte, 1<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}

	// B does not read: A's Write fills B's window, waits, and gives up.
	require.NoError(t, ca.SetWriteDeadline(time.Now().Add(50*time.Millisecond)))
	n, err := ca.Write(data)
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	require.Greater(t, n, 0)
	require.LessOrEqual(t, n, MinWindow, "no more than the window is in flight")

	// The rest goes once B reads, after exactly the first n bytes.
	require.NoError(t, ca.SetWriteDeadline(time.Time{}))
	wrote := make(chan error, 1)
	go func() { _, err := ca.Write(data[n:]); wrote <- err }()
	got := make([]byte, len(data))
	_, err = io.ReadFull(cb, got)
	require.NoError(t, err)
	require.NoError(t, <-wrote)
	require.True(t, bytes.Equal(data, got), "the bytes arrived whole and in order")
}

func TestTunnelCloseEndsBlockedReadAndWrite(t *testing.T) {
	small := Config{Window: MinWindow}
	a, b := pair(t, small, small)
	ca, cb := openTunnel(t, a, b, "hi")
	errs := make(chan error, 2)
	go func() { _, err := ca.Read(make([]byte, 10)); errs <- err }()
	go func() { _, err := ca.Write(make([]byte, 1<<20)); errs <- err }() // cannot end: B does not read
	require.NoError(t, ca.Close())
	for range 2 {
		require.ErrorIs(t, within(t, "a blocked call", func() error { return <-errs }), net.ErrClosed)
	}
	require.ErrorIs(t, readErr(t, cb), io.EOF, "B reads what came, then io.EOF")
}

func TestCloseEndsEveryTunnel(t *testing.T) {
	for _, closed := range []string{"acceptor", "opener"} {
		t.Run("the "+closed+"'s", func(t *testing.T) {
			a, b := pair(t, Config{}, Config{})
			ca, cb := openTunnel(t, a, b, "hi")
			gone, other, stays, mine := b, a, ca, cb
			if closed == "opener" {
				gone, other, stays, mine = a, b, cb, ca
			}
			_, err := mine.Write([]byte("last words"))
			require.NoError(t, err)
			blocked := make(chan error, 1)
			go func() { _, err := mine.Read(make([]byte, 10)); blocked <- err }()

			gone.tun.Close()

			// The other end reads what was written, then io.EOF.
			got := make([]byte, len("last words"))
			_, err = io.ReadFull(stays, got)
			require.NoError(t, err)
			require.Equal(t, "last words", string(got))
			require.ErrorIs(t, readErr(t, stays), io.EOF)

			// This end's calls fail, a blocked one too.
			err = within(t, "a Read after Close", func() error { return <-blocked })
			require.ErrorIs(t, err, ErrClosed)
			require.ErrorIs(t, err, net.ErrClosed)
			_, err = mine.Write([]byte("x"))
			require.ErrorIs(t, err, ErrClosed)

			// No more tunnels, either way.
			_, err = gone.tun.Open(t.Context(), other.id, nil)
			require.ErrorIs(t, err, ErrClosed)
			_, err = other.tun.Open(t.Context(), gone.id, nil)
			var refused *RefusedError
			require.ErrorAs(t, err, &refused)
			require.Contains(t, refused.Reason, "shutting down")
		})
	}
}

func TestCloseEndsATunnelBeingOpened(t *testing.T) {
	a, b := pair(t, Config{}, Config{})
	asked, release := make(chan struct{}, 1), make(chan struct{})
	b.set(func(b *memNode) { b.asked, b.wait = asked, release })
	opening := make(chan error, 1)
	go func() {
		_, err := a.tun.Open(context.Background(), b.id, []byte("hi"))
		opening <- err
	}()
	// Once B is asked, A closes; then B accepts, too late.
	within(t, "B to be asked", func() error { <-asked; return nil })
	a.tun.Close()
	require.ErrorIs(t, within(t, "Open", func() error { return <-opening }), ErrClosed)
	close(release)
	late := accept(t, b)
	defer late.conn.Close()
	require.ErrorIs(t, readErr(t, late.conn), io.ErrUnexpectedEOF)
}

func TestTunnelBreaksWhenTheOtherNodeVanishes(t *testing.T) {
	keepalive := Config{Keepalive: 50 * time.Millisecond}
	a, b := pair(t, keepalive, keepalive)
	ca, cb := openTunnel(t, a, b, "hi")
	// B is cut off without a word, as when its process dies.
	b.set(func(b *memNode) { b.cut = true })
	err := readErr(t, ca)
	require.ErrorIs(t, err, ErrTunnelBroken)
	require.ErrorContains(t, err, "has said nothing")
	_, err = ca.Write([]byte("x"))
	require.ErrorIs(t, err, ErrTunnelBroken)
	require.ErrorIs(t, readErr(t, cb), ErrTunnelBroken)
}

func TestTunnelIdleWithKeepalivesStaysOpen(t *testing.T) {
	fast := Config{Keepalive: 10 * time.Millisecond}
	slow := Config{Keepalive: 150 * time.Millisecond}
	for _, tc := range []struct {
		name       string
		cfgA, cfgB Config
	}{
		{"same intervals", fast, fast},
		{"different intervals", fast, slow},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := pair(t, tc.cfgA, tc.cfgB)
			ca, cb := openTunnel(t, a, b, "hi")
			// Idle for many more of A's intervals than breaking takes,
			// and a few of B's: still open both ways.
			require.NoError(t, ca.SetReadDeadline(time.Now().Add(600*time.Millisecond)))
			_, err := ca.Read(make([]byte, 1))
			require.ErrorIs(t, err, os.ErrDeadlineExceeded)
			require.NoError(t, ca.SetReadDeadline(time.Time{}))
			for _, dir := range [][2]net.Conn{{cb, ca}, {ca, cb}} {
				_, err = dir[0].Write([]byte("ok"))
				require.NoError(t, err)
				got := make([]byte, 2)
				_, err = io.ReadFull(dir[1], got)
				require.NoError(t, err)
				require.Equal(t, "ok", string(got))
			}
		})
	}
}

func TestTunnelBreaksOnAMissingMessage(t *testing.T) {
	a, b := pair(t, Config{}, Config{})
	ca, cb := openTunnel(t, a, b, "hi")
	_, err := cb.Write([]byte("before"))
	require.NoError(t, err)
	got := make([]byte, len("before"))
	_, err = io.ReadFull(ca, got)
	require.NoError(t, err)
	require.Equal(t, "before", string(got))

	// The transport loses B's next data; A finds it missing when the one
	// after comes, and delivers nothing of either.
	lost := a.loseOnce(kindData, "lost")
	_, err = cb.Write([]byte("lost"))
	require.NoError(t, err)
	<-lost
	_, err = cb.Write([]byte("after"))
	require.NoError(t, err)
	n, err := ca.Read(make([]byte, 100))
	require.Equal(t, 0, n, "no byte after the hole")
	require.ErrorIs(t, err, ErrTunnelBroken)
	require.ErrorContains(t, err, "number 3 came when 2 was due")
	// B is told why.
	err = readErr(t, cb)
	require.ErrorIs(t, err, ErrTunnelBroken)
	require.ErrorContains(t, err, "were lost")
}

func TestTunnelBreaksWhenSendingFails(t *testing.T) {
	fast := Config{Keepalive: 20 * time.Millisecond}
	a, b := pair(t, fast, fast)
	ca, cb := openTunnel(t, a, b, "hi")
	full := errors.New("the queue is full")
	a.set(func(a *memNode) { a.failed = full })
	_, err := ca.Write([]byte("x"))
	require.ErrorIs(t, err, ErrTunnelBroken)
	require.ErrorIs(t, err, full)
	_, err = ca.Read(make([]byte, 1))
	require.ErrorIs(t, err, ErrTunnelBroken, "Read says so too")
	// A sends nothing after the message it could not send, its end
	// marker neither: B's keepalive finds it silent.
	a.set(func(a *memNode) { a.failed = nil })
	err = readErr(t, cb)
	require.ErrorIs(t, err, ErrTunnelBroken)
	require.ErrorContains(t, err, "has said nothing")
}

func TestTunnelLosingMessagesBreaksItWithoutAHole(t *testing.T) {
	// What A sends is lost for a while, as while a broker reconnects:
	// the stream breaks, and B has read exactly its beginning.
	for _, tc := range []struct {
		name  string
		count int
	}{
		{"a few, found missing by the next data", 2},
		{"all that is in flight, found missing by a keepalive", 1 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Keepalive: 20 * time.Millisecond, Window: MinWindow}
			a, b := pair(t, cfg, cfg)
			ca, cb := openTunnel(t, a, b, "hi")
			lost := b.loseRun(kindData, "", 10, tc.count)
			stop := make(chan struct{})
			wrote := counting(ca, stop)
			read := countingReader(cb)
			r := within2(t, lost, read)
			close(stop)
			werr := within(t, "A's last Write", func() error { return <-wrote })
			require.ErrorIs(t, r.err, ErrTunnelBroken, "B read %d bytes", r.n)
			require.ErrorContains(t, r.err, "were lost")
			require.GreaterOrEqual(t, r.n, 10, "B read the 10 messages before the lost ones")
			require.ErrorIs(t, werr, ErrTunnelBroken)
		})
	}
}

// within2 waits for the loss, then for what B read, failing the test if
// B stops reading first or either takes longer than testTimeout.
func within2(t *testing.T, lost <-chan struct{}, read <-chan readResult) readResult {
	t.Helper()
	select {
	case <-lost:
	case r := <-read:
		t.Fatalf("B stopped reading, after %d bytes, before anything was lost: %v", r.n, r.err)
	case <-time.After(testTimeout):
		t.Fatal("nothing was lost")
	}
	select {
	case r := <-read:
		return r
	case <-time.After(testTimeout):
		t.Fatal("B still reads")
		return readResult{}
	}
}

// BenchmarkTunnel measures a tunnel's throughput, one way, with writes of
// several sizes.
func BenchmarkTunnel(b *testing.B) {
	for _, size := range []int{100, 4096, 64 << 10} {
		b.Run(strconv.Itoa(size)+"B", func(b *testing.B) {
			na, nb := pair(b, Config{}, Config{})
			ca, cb := openTunnel(b, na, nb, "bench")
			msg := make([]byte, size)
			b.SetBytes(int64(size))
			b.ResetTimer()
			done := make(chan error, 1)
			go func() {
				_, err := io.CopyN(io.Discard, cb, int64(size)*int64(b.N))
				done <- err
			}()
			for range b.N {
				if _, err := ca.Write(msg); err != nil {
					b.Fatal(err)
				}
			}
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		})
	}
}
