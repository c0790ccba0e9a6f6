package wszero

import (
	"fmt"
	"log/slog"
	"time"
)

// rateVerdict is what the rate limit decides about one incoming message.
type rateVerdict uint8

const (
	rateOK      rateVerdict = iota // handle it
	rateDropped                    // over the limit: drop it
	rateFlood                      // far over the limit for too long: disconnect
)

// checkRate applies the rate limit to one incoming message. A message over
// the limit is dropped, and the sender hears so at most once a second; a
// client that has more than a burst's worth dropped within a second is
// flooding and is disconnected.
func (l *link) checkRate() rateVerdict {
	if l.reader.limiter == nil {
		return rateOK
	}
	if l.reader.credit > 0 {
		l.reader.credit-- // sent while the server kept this reader waiting
		return rateOK
	}
	if l.reader.limiter.Allow() {
		return rateOK
	}
	if now := monoNow(); now-l.reader.floodWindow >= monotime(time.Second) {
		l.reader.floodWindow, l.reader.dropped = now, 0
	}
	l.reader.dropped++
	if l.reader.dropped > l.server.opts.rateBurst {
		return rateFlood
	}
	if l.reader.dropped == 1 {
		l.c.sendError(nil, "", fmt.Sprintf("slow down: you are sending more than %g messages a second, so some were dropped", l.server.opts.ratePerSecond))
		l.server.logThrottled(slog.LevelInfo, "wszero: messages dropped: a client sends faster than the rate limit",
			"client", l.c.id, "limit", l.server.opts.ratePerSecond)
	}
	return rateDropped
}
