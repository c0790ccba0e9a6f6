package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/wszero/wszero/internal/headless"
)

// wait bounds every wait for the page.
const wait = 5 * time.Second

// TestCounterInTheBrowser builds the app with npm when it must, serves it
// with newServer, and uses it in two tabs of a real browser: the badge says
// "open", +1 counts, both tabs show the same count, and a call the server
// refuses shows the server's words.
func TestCounterInTheBrowser(t *testing.T) {
	buildApp(t)
	s := newServer("dist")
	ts := httptest.NewServer(s)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutting the server down: %v", err)
		}
		ts.Close()
	})

	browser := headless.Browser(t)
	first := openTab(t, browser, ts.URL)
	first.WaitFor(`document.getElementById("state").textContent === "open"`)
	first.WaitFor(`/^\d+$/.test(document.getElementById("count").textContent)`)
	start := first.count()

	first.click("plus")
	first.WaitFor(fmt.Sprintf(`document.getElementById("count").textContent === "%d"`, start+1))

	second := openTab(t, browser, ts.URL)
	second.WaitFor(`document.getElementById("state").textContent === "open"`)
	second.WaitFor(fmt.Sprintf(`document.getElementById("count").textContent === "%d"`, start+1))
	second.click("plus")
	first.WaitFor(fmt.Sprintf(`document.getElementById("count").textContent === "%d"`, start+2))
	second.WaitFor(fmt.Sprintf(`document.getElementById("count").textContent === "%d"`, start+2))

	first.click("big")
	first.WaitFor(`document.getElementById("error")?.textContent === "add between 1 and 10 at a time"`)
	if got := first.count(); got != start+2 {
		t.Errorf("the refused call changed the count to %d", got)
	}
}

// tab is one browser tab with the app open.
type tab struct{ *headless.Tab }

func openTab(t *testing.T, browser context.Context, url string) *tab {
	t.Helper()
	return &tab{headless.OpenTab(t, browser, url)}
}

func (b *tab) click(id string) {
	b.T.Helper()
	b.Do(chromedp.Click(chromedp.ID(id)))
}

// count is the number the page shows.
func (b *tab) count() int {
	b.T.Helper()
	text := headless.Eval[string](b.Tab, `document.getElementById("count").textContent`)
	n, err := strconv.Atoi(text)
	if err != nil {
		b.T.Fatalf("the count shows %q", text)
	}
	return n
}

// npmTime bounds one npm command: an install downloads packages.
const npmTime = 5 * time.Minute

// buildApp installs the app's packages when node_modules is missing, and
// builds dist/ when it is missing or older than its sources (the app's and
// the wszero client's). Without npm the test is skipped, except under
// CI=true, where it fails.
func buildApp(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("npm"); err != nil {
		const how = "npm not found: install Node 20.19 or newer to test the React example"
		if os.Getenv("CI") == "true" {
			t.Fatal(how + " — CI requires this test")
		}
		t.Skip(how)
	}
	if _, err := os.Stat("node_modules"); errors.Is(err, fs.ErrNotExist) {
		// "npm ci" installs exactly what package-lock.json says and never
		// rewrites it: a test run leaves the checkout as it found it. The
		// lock file lists every platform's optional packages (rollup's
		// native builds), or npm ci refuses it as out of sync.
		npm(t, "ci", "--no-audit", "--no-fund")
	}
	if stale(t) {
		npm(t, "run", "build")
	}
}

// npm runs npm in this folder, bounded by npmTime.
func npm(t *testing.T, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), npmTime)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", args...)
	cmd.WaitDelay = 10 * time.Second // npm's children may hold the output open
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("npm %v: %v\n%s", args, err, out)
	}
	t.Logf("npm %v took %v", args, time.Since(start).Round(time.Millisecond))
}

// stale reports whether dist/index.html is missing or older than any of
// the files it is built from.
func stale(t *testing.T) bool {
	t.Helper()
	built, err := os.Stat(filepath.Join("dist", "index.html"))
	if err != nil {
		return true
	}
	newer := false
	for _, root := range []string{"src", "index.html", "package.json", "vite.config.ts", "tsconfig.json",
		filepath.Join("..", "..", "js", "dist"), filepath.Join("..", "..", "js", "package.json")} {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if info, err := d.Info(); err == nil && info.ModTime().After(built.ModTime()) {
				newer = true
			}
			return nil
		})
		if err != nil {
			t.Fatalf("looking at the app's sources: %v", err)
		}
	}
	return newer
}
