// Package socketio prepares the benchmark's Socket.IO 4 peer: server.mjs,
// in this folder, run by Node with the socket.io package that
// package.json pins and package-lock.json locks.
//
//	cd bench/socketio && npm ci && node server.mjs
package socketio

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// ErrNoNode is what Install returns, wrapped, when node or npm is not on
// the PATH.
var ErrNoNode = errors.New("the Socket.IO peer needs node and npm: install Node 20 or newer")

// Install checks that node and npm are on the PATH and, when dir's
// node_modules does not hold socket.io, runs "npm ci" in dir, writing
// npm's output to out. dir is this folder (bench/socketio).
func Install(ctx context.Context, dir string, out io.Writer) error {
	for _, cmd := range []string{"node", "npm"} {
		if _, err := exec.LookPath(cmd); err != nil {
			return fmt.Errorf("%w (%s not found)", ErrNoNode, cmd)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "socket.io", "package.json")); err == nil {
		return nil
	}
	// The lock file holds no platform-specific packages, so npm ci takes it
	// as it is on any machine.
	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = 10 * time.Second // npm's children may hold the output open
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("npm ci in %s: %w", dir, err)
	}
	return nil
}
