package main

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestNewProjectBuildsOfflineAndRuns makes a project as a newcomer would,
// with no module proxy to reach, builds it, runs it, and opens its page.
func TestNewProjectBuildsOfflineAndRuns(t *testing.T) {
	t.Setenv("GOPROXY", "off") // what wszero needs is in the module cache: this checkout was built
	t.Setenv("GOFLAGS", "")
	dir := filepath.Join(t.TempDir(), "My App")
	var said strings.Builder
	if err := newProject(dir, &said); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(said.String(), "go run .") {
		t.Errorf("it did not say how to run the project:\n%s", said.String())
	}
	mod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(mod), "module my-app\n") || !strings.Contains(string(mod), "replace github.com/wszero/wszero => ") {
		t.Errorf("go.mod:\n%s", mod)
	}

	bin := filepath.Join(t.TempDir(), "app")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = dir
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build in the new project: %v\n%s", err, out)
	}
	run := exec.Command(bin)
	run.Dir = dir
	run.Env = append(os.Environ(), "PORT=0")
	out, err := run.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = run.Process.Signal(os.Interrupt) // our own child, by its PID
		_ = run.Wait()
	})
	port := make(chan string, 1)
	go func() {
		local := regexp.MustCompile(`http://localhost:(\d+)`)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := local.FindStringSubmatch(sc.Text()); m != nil {
				port <- m[1]
				break
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	var p string
	select {
	case p = <-port:
	case <-time.After(30 * time.Second):
		t.Fatal("the new project's server printed no address")
	}
	resp, err := http.Get("http://127.0.0.1:" + p + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), `send_message({op: "announce"`) {
		t.Errorf("the page is not the project's index.html:\n%s", page)
	}
}

func TestNewProjectRefusesAFolderWithFiles(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	err := newProject(dir, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "already has files in it: choose a new folder") {
		t.Fatalf("err = %v", err)
	}
}
