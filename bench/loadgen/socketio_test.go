package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wszero/wszero/bench/socketio"
)

// TestSocketIONode runs the echo and fan-out scenarios briefly against the
// real Socket.IO peer (../socketio/server.mjs under Node), which pings every
// 50 ms and closes a connection whose ping is unanswered for 200 ms: the
// connections must answer to stay open. Without node, npm or the packages
// the test is skipped, except under CI=true, where it fails.
func TestSocketIONode(t *testing.T) {
	addr := startNode(t, "--ping-interval", "50", "--ping-timeout", "200")
	t.Run("echo", func(t *testing.T) {
		l, cs := dialAll(t, addr, 5, SocketIO)
		if res, err := deliveries(Echo(l, cs, 300*time.Millisecond)); err != nil {
			t.Fatalf("%+v: %v", res, err)
		}
	})
	t.Run("fanout", func(t *testing.T) {
		l, cs := dialAll(t, addr, 5, SocketIO)
		if res, err := deliveries(FanoutClosed(l, cs, 300*time.Millisecond, 4)); err != nil {
			t.Fatalf("%+v: %v", res, err)
		}
	})
}

// startNode installs the Socket.IO peer's packages when they are missing,
// starts it with args and returns its address; the process is killed, by
// its PID, when the test ends.
func startNode(t *testing.T, args ...string) string {
	t.Helper()
	dir := filepath.Join("..", "socketio")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute) // npm ci downloads packages
	defer cancel()
	var npmOut bytes.Buffer
	if err := socketio.Install(ctx, dir, &npmOut); err != nil {
		why := "the Socket.IO peer cannot run: " + err.Error()
		if !errors.Is(err, socketio.ErrNoNode) {
			why += "\n" + npmOut.String()
		}
		if os.Getenv("CI") == "true" {
			t.Fatal(why + " — CI requires this test")
		}
		t.Skip(why)
	}
	cmd := exec.Command("node", append([]string{"server.mjs"}, args...)...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() && stderr.Len() > 0 {
			t.Logf("node's stderr:\n%s", stderr.String())
		}
	})
	listen := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		listen <- line
	}()
	select {
	case line := <-listen:
		if !strings.HasPrefix(line, "LISTEN ") {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("node server.mjs printed %q, not LISTEN <address>; stderr:\n%s", line, stderr.String())
		}
		return strings.TrimSpace(strings.TrimPrefix(line, "LISTEN "))
	case <-time.After(30 * time.Second):
		t.Fatal("node server.mjs printed nothing in 30 s")
	}
	return ""
}
