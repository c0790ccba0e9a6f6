package client

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// logThrottle lets through at most one log line a second for each message
// about what the server sent, and says how many it held back, so that a
// server sending a flood of strange frames cannot flood the log.
type logThrottle struct {
	mu      sync.Mutex
	last    map[string]time.Time
	skipped map[string]int
}

// throttledKinds bounds how many kinds of line the throttle tells apart:
// beyond it, lines about different ops count as one kind.
const throttledKinds = 256

// logThrottled logs msg at level, throttled for each msg and op (when the
// first of args is "op").
func (c *Conn) logThrottled(level slog.Level, msg string, args ...any) {
	t := &c.throttle
	key := msg
	now := time.Now()
	t.mu.Lock()
	if len(args) >= 2 && args[0] == "op" && len(t.last) < throttledKinds {
		key = fmt.Sprint(msg, "\x00", args[1])
	}
	if now.Sub(t.last[key]) < time.Second {
		t.skipped[key]++
		t.mu.Unlock()
		return
	}
	if t.last == nil {
		t.last, t.skipped = map[string]time.Time{}, map[string]int{}
	}
	t.last[key] = now
	skipped := t.skipped[key]
	delete(t.skipped, key)
	t.mu.Unlock()
	if skipped > 0 {
		args = append(args, "more_not_logged", skipped)
	}
	c.opts.log.Log(context.Background(), level, msg, args...)
}
