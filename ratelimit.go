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
func (c *Client) checkRate() rateVerdict {
	if c.reader.limiter == nil {
		return rateOK
	}
	if c.reader.credit > 0 {
		c.reader.credit-- // sent while the server kept this reader waiting
		return rateOK
	}
	if c.reader.limiter.Allow() {
		return rateOK
	}
	if now := monoNow(); now-c.reader.floodWindow >= monotime(time.Second) {
		c.reader.floodWindow, c.reader.dropped = now, 0
	}
	c.reader.dropped++
	if c.reader.dropped > c.server.opts.rateBurst {
		return rateFlood
	}
	if c.reader.dropped == 1 {
		c.sendError(nil, "", fmt.Sprintf("slow down: you are sending more than %g messages a second, so some were dropped", c.server.opts.ratePerSecond))
		c.server.logThrottled(slog.LevelInfo, "wszero: messages dropped: a client sends faster than the rate limit",
			"client", c.id, "limit", c.server.opts.ratePerSecond)
	}
	return rateDropped
}
