// Package logthrottle lets through at most one log line a second for each
// kind of line, and says how many it held back, so that what a peer can
// repeat (refused connections, strange frames) cannot flood a log. The
// server and the Go client share it.
package logthrottle

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// kinds bounds how many kinds of line a Throttle tells apart; past it,
// lines of new kinds share one.
const kinds = 1024

// Throttle is a log throttle. Its zero value is ready; it is safe to use
// from any goroutine.
type Throttle struct {
	mu      sync.Mutex
	last    map[string]time.Time
	skipped map[string]int
}

// Log logs msg with args at level on l, unless a line of the same kind
// went out less than a second ago; kind names the kind, and is msg when "".
func (t *Throttle) Log(l *slog.Logger, level slog.Level, kind, msg string, args ...any) {
	if kind == "" {
		kind = msg
	}
	now := time.Now()
	t.mu.Lock()
	if t.last == nil {
		t.last, t.skipped = map[string]time.Time{}, map[string]int{}
	}
	if _, known := t.last[kind]; !known && len(t.last) >= kinds {
		kind = "" // the kind of every line past the bound
	}
	if now.Sub(t.last[kind]) < time.Second {
		t.skipped[kind]++
		t.mu.Unlock()
		return
	}
	t.last[kind] = now
	skipped := t.skipped[kind]
	delete(t.skipped, kind)
	t.mu.Unlock()
	if skipped > 0 {
		args = append(args, "more_not_logged", skipped)
	}
	l.Log(context.Background(), level, msg, args...)
}
