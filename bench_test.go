package wszero

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/wszero/wszero/internal/protocol"
)

// The benchmarks of the hot paths. Those without sockets measure wszero's
// own work precisely: a fake client's writer is marked as running, so that
// enqueue only queues, and the benchmark empties the queues itself. Those
// with sockets measure what a program sees, the kernel included.
//
//	go test -run '^$' -bench . -benchmem

// fakeClient returns a client of s with no connection, registered with the
// server, whose frames stay in its queue.
func fakeClient(s *Server) *Client {
	c := offlineClient(s, newClientID())
	s.mu.Lock()
	s.nextSeq++
	c.seq = s.nextSeq
	s.clients[c.id] = c
	s.allSnap = nil
	s.mu.Unlock()
	return c
}

// offlineClient returns a client of s with a link but no connection:
// with writing set, no writer starts, and what the server sends it stays
// in its link's queue.
func offlineClient(s *Server, id string) *Client {
	c := &Client{id: id, server: s}
	c.link = &link{server: s, c: c, send: sendQueue{writing: true}, connClosed: make(chan struct{}), readerGone: make(chan struct{})}
	return c
}

// emptyQueue drops what was queued for c, as its writer would.
func emptyQueue(c *Client) {
	c.mu.Lock()
	clear(c.link.send.frames)
	c.link.send.frames, c.link.send.bytes = c.link.send.frames[:0], 0
	c.mu.Unlock()
}

// BenchmarkDispatch measures one incoming message: decoding, binding and the
// handler, with the reply queued when the message is a call.
func BenchmarkDispatch(b *testing.B) {
	type say struct {
		Text    string
		Channel string `json:"channel,omitempty"`
	}
	cases := []struct {
		name string
		msg  string
	}{
		{"struct", `{"op":"say","text":"hello, everyone in the room","channel":"general"}`},
		{"params", `{"op":"sayp","text":"hello, everyone in the room","channel":"general"}`},
		{"call", `{"op":"add","a":1,"b":2,"_ref":7}`},
	}
	s := New(quiet())
	s.On("say", func(c *Client, p say) {})
	s.On("sayp", func(c *Client, p Params) {})
	s.On("add", func(c *Client, p struct{ A, B int }) int { return p.A + p.B })
	c := fakeClient(s)
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			data := []byte(tc.msg)
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for i := 0; i < b.N; i++ {
				m := s.decodeFrame(websocket.TextMessage, data)
				if m.problem != "" {
					b.Fatalf("%s: %s", tc.msg, m.problem)
				}
				s.dispatch(c, m)
				if len(c.link.send.frames) > 0 {
					emptyQueue(c)
				}
			}
		})
	}
}

// BenchmarkBroadcast measures a broadcast to n members without sockets:
// encoding and framing once, then queuing for each member. ns/delivery is
// the cost per member; allocs/op must not grow with n.
func BenchmarkBroadcast(b *testing.B) {
	benchmarkFanOut(b, func(s *Server) func(Params) error {
		return func(p Params) error { return s.Broadcast("say", p) }
	})
}

// BenchmarkBroadcastGroup is BenchmarkBroadcast through BroadcastTo, for a
// group holding every client.
func BenchmarkBroadcastGroup(b *testing.B) {
	benchmarkFanOut(b, func(s *Server) func(Params) error {
		for _, c := range s.Clients() {
			if err := c.AddToGroup("room"); err != nil {
				b.Fatal(err)
			}
		}
		return func(p Params) error { return s.BroadcastTo("room", "say", p) }
	})
}

// BenchmarkSendToOne measures SendToOne beside BenchmarkBroadcastGroup:
// one delivery each, to the member whose turn it is in a group holding
// every client. Choosing looks at every member, so the cost per message
// grows with the group, as a broadcast's does.
func BenchmarkSendToOne(b *testing.B) {
	benchmarkFanOutWith(b, fanOutOne, func(s *Server) func(Params) error {
		for _, c := range s.Clients() {
			if err := c.AddToGroup("room"); err != nil {
				b.Fatal(err)
			}
		}
		return func(p Params) error { return s.SendToOne("room", "say", p) }
	})
}

// BenchmarkBroadcastSessions is BenchmarkBroadcast to clients that speak
// sessions, as the browser and Go clients do: each broadcast is also kept
// for a resume, and each client acknowledges every protocol.AckEvery, which lets
// it go (the acknowledging, done by the clients' readers, is timed too).
func BenchmarkBroadcastSessions(b *testing.B) {
	benchmarkFanOutWith(b, fanOutSessions, func(s *Server) func(Params) error {
		return func(p Params) error { return s.Broadcast("say", p) }
	})
}

// benchmarkFanOut runs the broadcast that setup returns, once its server
// has 1, 100 and 10,000 socketless clients, emptying their queues now and
// then outside the timer.
func benchmarkFanOut(b *testing.B, setup func(s *Server) func(Params) error) {
	benchmarkFanOutWith(b, 0, setup)
}

// How benchmarkFanOutWith's clients and sends differ from a broadcast's.
type fanOutKind uint8

const (
	fanOutSessions fanOutKind = 1 << iota // the clients speak sessions
	fanOutOne                             // each send reaches one client: ns/delivery is ns/op
)

// benchmarkFanOutWith is benchmarkFanOut, with clients and sends of the
// kind given.
func benchmarkFanOutWith(b *testing.B, kind fanOutKind, setup func(s *Server) func(Params) error) {
	sessions := kind&fanOutSessions != 0
	for _, n := range []int{1, 100, 10000} {
		b.Run("members="+strconv.Itoa(n), func(b *testing.B) {
			s := New(quiet(), WithMaxGroupsPerClient(1))
			clients := make([]*Client, n)
			for i := range clients {
				clients[i] = fakeClient(s)
				if sessions {
					clients[i].sessioned = true
					clients[i].session = &session{key: newSessionKey()}
				}
			}
			broadcast := setup(s)
			params := Params{"text": "hello, everyone in the room", "from": "ann"}
			warmQueues(b, clients, func() error { return broadcast(params) })
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := broadcast(params); err != nil {
					b.Fatal(err)
				}
				if sessions && i%protocol.AckEvery == protocol.AckEvery-1 {
					for _, c := range clients {
						c.acked(uint64(64 + i + 1)) // all so far, the 64 that warmed the queues too
					}
				}
				if i%64 == 63 {
					b.StopTimer()
					for _, c := range clients {
						emptyQueue(c)
					}
					b.StartTimer()
				}
			}
			perOp := n
			if kind&fanOutOne != 0 {
				perOp = 1
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(perOp), "ns/delivery")
		})
	}
}

// BenchmarkBroadcastSockets measures broadcasts that reach n real clients
// over loopback, the writers and the kernel included: b.N broadcasts, at
// most 32 in flight, each read by every client. The clients' reading runs
// in the same process, so the figure is a bound, not a server's alone.
func BenchmarkBroadcastSockets(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		b.Run("members="+strconv.Itoa(n), func(b *testing.B) {
			s, ts := newTestServer(b, WithRateLimit(0, 0), WithMaxConnectionsPerIP(n+1))
			var got atomic.Int64 // messages read by all clients
			var wg sync.WaitGroup
			conns := make([]*websocket.Conn, n)
			for i := range conns {
				conns[i] = dial(b, ts).conn
			}
			waitFor(b, func() bool { return len(s.Clients()) == n })
			for _, conn := range conns {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						if _, _, err := conn.ReadMessage(); err != nil {
							return
						}
						got.Add(1)
					}
				}()
			}
			params := Params{"text": "hello, everyone in the room", "from": "ann"}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := s.Broadcast("say", params); err != nil {
					b.Fatal(err)
				}
				if i%32 == 31 || i == b.N-1 {
					want := int64(i+1) * int64(n)
					waitFor(b, func() bool { return got.Load() >= want })
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/delivery")
			for _, conn := range conns {
				conn.Close()
			}
			wg.Wait()
		})
	}
}

// BenchmarkCallSocket measures request/reply round trips over loopback:
// clients each with one call in flight, through decoding, binding, the
// handler loop and the reply.
func BenchmarkCallSocket(b *testing.B) {
	for _, n := range []int{1, 16} {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) {
			s, ts := newTestServer(b, WithRateLimit(0, 0))
			s.On("echo", func(c *Client, p struct{ Text string }) string { return p.Text })
			conns := make([]*websocket.Conn, n)
			for i := range conns {
				conns[i] = dial(b, ts).conn
			}
			msg := []byte(`{"op":"echo","text":"hello, everyone in the room","_ref":1}`)
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ReportAllocs()
			b.ResetTimer()
			for _, conn := range conns {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						if err := conn.WriteMessage(websocket.TextMessage, msg); err != nil {
							b.Error(err)
							return
						}
						if _, _, err := conn.ReadMessage(); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
		})
	}
}

// warmQueues grows the clients' queues to the 64 frames the broadcast
// benchmarks let them hold, as a running server's queues are, so that
// allocs/op counts the broadcast's own allocations.
func warmQueues(b *testing.B, clients []*Client, broadcast func() error) {
	for range 64 {
		if err := broadcast(); err != nil {
			b.Fatal(err)
		}
	}
	for _, c := range clients {
		emptyQueue(c)
	}
}

// waitFor polls cond until it holds, failing the benchmark after testTimeout.
func waitFor(b *testing.B, cond func() bool) {
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			b.Fatal("timed out")
		}
		time.Sleep(20 * time.Microsecond)
	}
}

// BenchmarkPresenceMemory measures what a server keeps of another node's
// members: b.N clients of that node, each in one group of 100, told by a
// snapshot. It reports the heap per membership (bytes/member).
func BenchmarkPresenceMemory(b *testing.B) {
	s := New(quiet())
	p := &s.presence
	hi, _ := json.Marshal(presenceMessage{Kind: msgHi})
	p.receive("other", hi)
	snap := presenceMessage{Kind: msgSnapshot, Last: true}
	for i := range b.N {
		id := "other." + newClientID()
		snap.Members = append(snap.Members, snapshotMember{Client: id, Identity: json.RawMessage(`{"name":"Ada"}`),
			Groups: map[string]int64{"room-" + strconv.Itoa(i%100): time.Now().UnixMilli()}})
	}
	data, _ := json.Marshal(snap)
	snap = presenceMessage{}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	p.receive("other", data)
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(data) // in both measures: only what is kept counts
	n, err := s.CountMembers(context.Background(), "room-0")
	if err != nil || n != (b.N+99)/100 {
		b.Fatalf("counted %d (%v), want %d", n, err, (b.N+99)/100)
	}
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(b.N), "bytes/member")
}
