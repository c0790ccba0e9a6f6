package main

import (
	"io"
	"log/slog"
	"net/http"

	"github.com/wszero/wszero"
)

// newWszero is the application on wszero: two handlers with bound structs.
func newWszero() http.Handler {
	s := wszero.New(
		wszero.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
		wszero.WithRateLimit(0, 0),
		wszero.WithMaxConnections(50000),
		wszero.WithMaxConnectionsPerIP(50000),
	)
	type echo struct {
		Seq  int64  `json:"seq"`
		Text string `json:"text"`
	}
	type msg struct {
		Seq  int64  `json:"seq"`
		Ts   int64  `json:"ts"`
		Text string `json:"text"`
	}
	s.On("echo", func(c *wszero.Client, p echo) error { return c.Send("echo", p) })
	s.On("pub", func(c *wszero.Client, p msg) error { return s.Broadcast("msg", p) })
	return s
}
