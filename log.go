package wszero

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// logger is the server's logger.
func (s *Server) logger() *slog.Logger { return s.opts.log }

// logThrottle lets through at most one log line a second for each message,
// and says how many it held back, so that a flood of refused connections
// cannot flood the log.
type logThrottle struct {
	mu      sync.Mutex
	last    map[string]time.Time
	skipped map[string]int
}

// logThrottled logs msg at level, throttled.
func (s *Server) logThrottled(level slog.Level, msg string, args ...any) {
	t := &s.logThrottle
	now := time.Now()
	t.mu.Lock()
	if now.Sub(t.last[msg]) < time.Second {
		t.skipped[msg]++
		t.mu.Unlock()
		return
	}
	if t.last == nil {
		t.last, t.skipped = make(map[string]time.Time), make(map[string]int)
	}
	t.last[msg] = now
	skipped := t.skipped[msg]
	delete(t.skipped, msg)
	t.mu.Unlock()
	if skipped > 0 {
		args = append(args, "more_not_logged", skipped)
	}
	s.logger().Log(context.Background(), level, msg, args...)
}
