package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wszero/wszero/internal/headless"
)

// TestDevModeConnects runs the app as a developer does: the Go server, and
// Vite's dev server (npm run dev) beside it, which serves the page and the
// wszero client from ../../js and forwards /ws. The page must connect with
// its default address and count, as the built app does.
func TestDevModeConnects(t *testing.T) {
	buildApp(t) // installs the packages; dev mode needs no build, but the tests share it
	s := newServer("dist")
	ts := httptest.NewServer(s)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		_ = s.Shutdown(ctx)
		ts.Close()
	})
	page := startVite(t, "ws"+strings.TrimPrefix(ts.URL, "http"))

	browser := headless.Browser(t)
	tab := openTab(t, browser, page)
	tab.WaitFor(`document.getElementById("state").textContent === "open"`)
	tab.WaitFor(`/^\d+$/.test(document.getElementById("count").textContent)`)
	start := tab.count()
	tab.click("plus")
	tab.WaitFor(fmt.Sprintf(`document.getElementById("count").textContent === "%d"`, start+1))
}

// viteURL is the address Vite prints once it serves.
var viteURL = regexp.MustCompile(`http://127\.0\.0\.1:\d+/`)

// ansi matches the terminal's colour codes, which a coloured line holds.
var ansi = regexp.MustCompile(`\x1b\[[0-9;]*m`)

// startVite runs Vite's dev server on a free loopback port, forwarding /ws
// to server, and returns the page's address. It is stopped when the test
// ends.
func startVite(t *testing.T, server string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close() // Vite takes it (--strictPort fails rather than take another)
	cmd := exec.Command("node_modules/.bin/vite", "--host", "127.0.0.1", "--port", fmt.Sprint(port), "--strictPort", "--clearScreen", "false")
	// NO_COLOR: with CI set, Vite colours its output, and the colours split the address.
	cmd.Env = append(os.Environ(), "WSZERO_SERVER="+server, "NO_COLOR=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // Vite and the esbuild it starts, ended together
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) // the group of our own child, by its PID
		select {
		case <-exited:
		case <-time.After(wait):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	})
	found := make(chan string, 1)
	printed := &syncBuffer{}
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(io.TeeReader(out, printed))
		for sc.Scan() {
			if u := viteURL.FindString(ansi.ReplaceAllString(sc.Text(), "")); u != "" {
				select {
				case found <- u:
				default:
				}
			}
		}
		_ = cmd.Wait()
	}()
	select {
	case u := <-found:
		return u
	case <-exited:
		t.Fatalf("vite ended before serving:\n%s", printed.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("vite did not say where it serves within 30 s")
	}
	return ""
}

// syncBuffer collects what a process prints, for the test to show.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
