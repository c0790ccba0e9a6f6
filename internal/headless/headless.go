// Package headless starts headless Chromium for wszero's browser tests.
//
// A test that needs the browser calls Browser. Where Chromium is not
// installed, the test is skipped with a message that says how to install
// it, except under CI=true, where a missing browser fails the test: CI must
// never pass by skipping the browser.
package headless

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// candidates are the Chromium executables looked for, in order, after the
// CHROMIUM environment variable.
var candidates = []string{"/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}

// ExecPath returns the Chromium executable to use, or "" when there is none.
func ExecPath() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, c := range candidates {
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	return ""
}

// Browser starts a headless Chromium with a fresh profile and returns a
// chromedp context for one tab, valid until the test ends. The browser is
// ended when the test ends. extra adds to the options it starts with, such
// as chromedp.Flag("ignore-certificate-errors-spki-list", …).
func Browser(t testing.TB, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	path := ExecPath()
	if path == "" {
		const how = "no Chromium found: install it (apt-get install chromium) or set CHROMIUM to its path"
		if os.Getenv("CI") == "true" {
			t.Fatal(how + " — CI requires the browser tests")
		}
		t.Skip(how)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless,
		chromedp.NoSandbox, // the tests may run as root
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		// This machine reaches nothing but loopback: keep Chromium from trying.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.WindowSize(1200, 900),
		chromedp.WSURLReadTimeout(30 * time.Second),
	}
	opts = append(opts, extra...)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	// Start the browser now, so that a failure to start is reported here.
	// (The first use of a tab's context starts the browser and binds it to
	// that context, so it must not be a short-lived one.)
	if err := chromedp.Do(ctx); err != nil {
		cancelTab()
		cancelAlloc()
		t.Fatalf("starting Chromium (%s): %v", path, err)
	}
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
	})
	return ctx
}

// NewTab opens another tab in the browser of ctx, closed when the test ends.
func NewTab(t testing.TB, ctx context.Context) context.Context {
	t.Helper()
	tab, cancel := chromedp.NewContext(ctx)
	if err := chromedp.Do(tab); err != nil {
		cancel()
		t.Fatalf("opening a tab: %v", err)
	}
	t.Cleanup(cancel)
	return tab
}
