package logthrottle

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestALineAKindASecond(t *testing.T) {
	var out bytes.Buffer
	l := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}))
	var th Throttle
	for i := 0; i < 1000; i++ {
		th.Log(l, slog.LevelWarn, "", "the same line", "i", i)
		th.Log(l, slog.LevelWarn, fmt.Sprint("kind ", i%3), "a line of three kinds")
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d lines for 2000 in one second, want 4 (one a kind):\n%s", len(lines), out.String())
	}
	for i := 0; i < 3*kinds; i++ { // more kinds than it tells apart: bounded
		th.Log(l, slog.LevelWarn, fmt.Sprint("new kind ", i), "many kinds")
	}
	if len(th.last) > kinds+1 {
		t.Errorf("the throttle keeps %d kinds, more than %d", len(th.last), kinds+1)
	}
}
