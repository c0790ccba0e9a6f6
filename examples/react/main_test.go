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
	first.waitFor(`document.getElementById("state").textContent === "open"`)
	first.waitFor(`/^\d+$/.test(document.getElementById("count").textContent)`)
	start := first.count()

	first.click("plus")
	first.waitFor(fmt.Sprintf(`document.getElementById("count").textContent === "%d"`, start+1))

	second := openTab(t, browser, ts.URL)
	second.waitFor(`document.getElementById("state").textContent === "open"`)
	second.waitFor(fmt.Sprintf(`document.getElementById("count").textContent === "%d"`, start+1))
	second.click("plus")
	first.waitFor(fmt.Sprintf(`document.getElementById("count").textContent === "%d"`, start+2))
	second.waitFor(fmt.Sprintf(`document.getElementById("count").textContent === "%d"`, start+2))

	first.click("big")
	first.waitFor(`document.getElementById("error")?.textContent === "add between 1 and 10 at a time"`)
	if got := first.count(); got != start+2 {
		t.Errorf("the refused call changed the count to %d", got)
	}
}

// tab is one browser tab.
type tab struct {
	t   *testing.T
	ctx context.Context
}

func openTab(t *testing.T, browser context.Context, url string) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil { // opens the tab: no timeout here
		t.Fatalf("opening a tab: %v", err)
	}
	b := &tab{t: t, ctx: ctx}
	b.do(chromedp.Navigate(url))
	return b
}

func (b *tab) do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, wait)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatal(err)
	}
}

func (b *tab) click(id string) {
	b.t.Helper()
	b.do(chromedp.Click(chromedp.ID(id)))
}

// count is the number the page shows.
func (b *tab) count() int {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, wait)
	defer cancel()
	text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("count").textContent`))
	if err != nil {
		b.t.Fatal(err)
	}
	n, err := strconv.Atoi(text)
	if err != nil {
		b.t.Fatalf("the count shows %q", text)
	}
	return n
}

// waitFor waits until a JavaScript expression is truthy in the tab.
func (b *tab) waitFor(expr string) {
	b.t.Helper()
	deadline := time.Now().Add(wait)
	tick := time.NewTicker(15 * time.Millisecond)
	defer tick.Stop()
	for {
		ctx, cancel := context.WithTimeout(b.ctx, time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("Boolean("+expr+")"))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			body, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.body.innerText`))
			b.t.Fatalf("waited %v for %s (error: %v); the page shows:\n%s", wait, expr, err, body)
		}
		<-tick.C
	}
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
		// "npm install" follows package-lock.json. "npm ci" would be
		// stricter, but the npm here leaves other platforms' optional
		// packages (rollup's native builds) out of the lock file and then
		// refuses it as out of sync.
		npm(t, "install", "--no-audit", "--no-fund")
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
