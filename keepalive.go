package wszero

import (
	"fmt"
	"sync"
	"time"

	"github.com/wszero/wszero/internal/protocol"
)

// keepaliveSlots is how many parts the ping interval is cut into. Each
// tick of the keepalive timer pings one slot of the clients, so that the
// pings of ten thousand clients are spread over the interval rather than
// sent at once.
const keepaliveSlots = 8

// keepalive pings every client once each ping interval, so that a peer
// that vanished without a word is noticed by its read deadline. One timer
// serves the whole server, and it runs only while clients are connected:
// a timer per client would cost each idle connection a few hundred bytes.
type keepalive struct {
	mu      sync.Mutex
	timer   *time.Timer // nil while no client is connected
	next    time.Time   // when timer fires
	slot    uint8       // the slot the next tick pings
	joined  uint8       // counts new clients, to spread them over slots
	stopped bool
	appPing []byte // the _ping message, the same for every client
}

// pingMessage is the _ping message for the ping interval every: the
// browser client sees it (a WebSocket ping it cannot), which tells the
// page that the connection is alive, and how long to wait before it may
// doubt it.
func pingMessage(every time.Duration) []byte {
	return []byte(fmt.Sprintf(`{%q:%q,%q:%d}`, protocol.KeyOp, protocol.OpPing, protocol.KeyEvery, max(every, 0).Milliseconds()))
}

// slotForNewClient returns the slot of a client that connects now: one of
// those the coming round pings in its second half, in turn, so that a
// client's first ping comes more than half an interval, and at most a
// whole one, after it connected (never at once, and never later than the
// page expects), and a class that connects at once is spread over four
// slots.
func (k *keepalive) slotForNewClient() uint8 {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.joined++
	return uint8((k.slot + keepaliveSlots/2 + k.joined%(keepaliveSlots/2)) % keepaliveSlots)
}

// startPing includes a newly connected client in the keepalive.
func (s *Server) startPing(c *Client) {
	every := s.opts.pingInterval
	k := &s.keep
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.appPing == nil {
		k.appPing = pingMessage(every)
	}
	if every != DefaultPingInterval {
		// Pages assume the default until they hear otherwise: say it now,
		// or a page would take a healthy quiet connection for dead.
		_ = c.enqueue(outFrame{kind: frameSession, data: k.appPing})
	}
	if every <= 0 || k.stopped || k.timer != nil {
		return
	}
	k.next = time.Now().Add(s.keepaliveTick())
	k.timer = time.AfterFunc(time.Until(k.next), s.pingSlot)
}

// keepaliveTick is how often the keepalive timer fires.
func (s *Server) keepaliveTick() time.Duration {
	return max(s.opts.pingInterval/keepaliveSlots, time.Millisecond)
}

// pingSlot sends a WebSocket ping and a _ping message to the clients of
// the next slot, and sets the timer for the slot after, unless no client
// is left. Each client is pinged once every keepaliveSlots ticks: once a
// ping interval.
func (s *Server) pingSlot() {
	k := &s.keep
	k.mu.Lock()
	if k.stopped {
		k.mu.Unlock()
		return
	}
	clients := s.members("", true)
	if len(clients) == 0 {
		k.timer = nil // startPing sets a new one for the next client
		k.mu.Unlock()
		return
	}
	slot := k.slot
	k.slot = (k.slot + 1) % keepaliveSlots
	now := time.Now()
	for k.next = k.next.Add(s.keepaliveTick()); !k.next.After(now); {
		k.next = k.next.Add(s.keepaliveTick()) // the timer was late: keep to the clock
	}
	k.timer.Reset(k.next.Sub(now))
	appPing := k.appPing
	k.mu.Unlock()
	for _, c := range clients {
		if c.pingSlot == slot && c.enqueue(outFrame{kind: framePing}) == nil {
			_ = c.enqueue(outFrame{kind: frameSession, data: appPing})
		}
	}
}

// stopPinging stops the keepalive for good, at Shutdown.
func (s *Server) stopPinging() {
	k := &s.keep
	k.mu.Lock()
	defer k.mu.Unlock()
	k.stopped = true
	if k.timer != nil {
		k.timer.Stop()
		k.timer = nil
	}
}
