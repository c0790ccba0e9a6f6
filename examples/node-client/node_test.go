// Package nodeclient tests that a client written in another language from
// the README's protocol table alone talks to a wszero server.
package nodeclient

import (
	"context"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/wszero/wszero"
)

func TestNodeClientFollowsTheProtocolTable(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("node is missing: CI runs this test")
		}
		t.Skip("node is not installed")
	}
	s := wszero.New(wszero.WithLogger(nil))
	s.On("add", func(c *wszero.Client, p struct{ A, B int }) int { return p.A + p.B })
	s.On("say", func(c *wszero.Client, p struct{ Text string }) {
		_ = c.Send("said", wszero.Params{"text": p.Text})
		c.Close()
	})
	ts := httptest.NewServer(s)
	defer ts.Close()
	defer s.Shutdown(context.Background())

	args := []string{"client.mjs", "ws" + strings.TrimPrefix(ts.URL, "http") + "/ws"}
	if exec.Command(node, "-e", "process.exit(typeof WebSocket === 'function' ? 0 : 1)").Run() != nil {
		args = append([]string{"--experimental-websocket"}, args...) // Node 20
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, node, args...).CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Equal(t, strings.Join([]string{
		"sum 5",
		`error add needs "b": add it to the message, like {"op": "add", "b": 1}`,
		`{"op":"said","text":"hello from Node"}`,
	}, "\n")+"\n", string(out))
}
