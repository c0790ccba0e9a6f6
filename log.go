package wszero

import (
	"log/slog"
)

// logger is the server's logger.
func (s *Server) logger() *slog.Logger { return s.opts.log }

// logThrottledWarn logs a warning at most once a second.
func (s *Server) logThrottledWarn(msg string, args ...any) {
	s.logThrottled(slog.LevelWarn, msg, args...)
}

// logThrottled logs msg at level, at most once a second (see logthrottle).
func (s *Server) logThrottled(level slog.Level, msg string, args ...any) {
	s.logThrottle.Log(s.logger(), level, "", msg, args...)
}
