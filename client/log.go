package client

import (
	"fmt"
	"log/slog"
)

// logThrottled logs msg at level, at most once a second for each msg and
// op (when the first of args is "op"), so that a server sending a flood of
// strange frames cannot flood the log.
func (c *Conn) logThrottled(level slog.Level, msg string, args ...any) {
	kind := msg
	if len(args) >= 2 && args[0] == "op" {
		kind = fmt.Sprint(msg, "\x00", args[1])
	}
	c.throttle.Log(c.opts.log, level, kind, msg, args...)
}
