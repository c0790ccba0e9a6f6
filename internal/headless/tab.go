package headless

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Wait bounds every wait of a Tab.
const Wait = 5 * time.Second

// Tab is one browser tab in a test. Its methods fail the test on error.
type Tab struct {
	T      testing.TB
	Ctx    context.Context
	cancel context.CancelFunc
}

// OpenTab opens a tab in the browser of ctx and navigates it to url. The
// tab is closed when the test ends.
func OpenTab(t testing.TB, browser context.Context, url string) *Tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	// The first run opens the tab; it must not have a timeout, which would
	// end the tab with it.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("opening a tab: %v", err)
	}
	tab := &Tab{T: t, Ctx: ctx, cancel: cancel}
	tab.Do(chromedp.Navigate(url))
	return tab
}

// Close closes the tab, as a person closing it would.
func (tab *Tab) Close() { tab.cancel() }

// In returns the tab for use by t, a subtest, so that failures are t's.
func (tab *Tab) In(t testing.TB) *Tab {
	return &Tab{T: t, Ctx: tab.Ctx, cancel: tab.cancel}
}

// Do runs actions in the tab, within Wait.
func (tab *Tab) Do(actions ...chromedp.Action[chromedp.Void]) {
	tab.T.Helper()
	ctx, cancel := context.WithTimeout(tab.Ctx, Wait)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		tab.T.Fatal(err)
	}
}

// Eval returns the value of a JavaScript expression in the tab.
func Eval[T any](tab *Tab, expr string) T {
	tab.T.Helper()
	ctx, cancel := context.WithTimeout(tab.Ctx, Wait)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		tab.T.Fatalf("%s: %v", expr, err)
	}
	return v
}

// WaitFor waits, at most Wait, until a JavaScript expression is truthy in
// the tab; on timeout the test fails showing the page's text.
func (tab *Tab) WaitFor(expr string) {
	tab.T.Helper()
	deadline := time.Now().Add(Wait)
	tick := time.NewTicker(15 * time.Millisecond)
	defer tick.Stop()
	for {
		ctx, cancel := context.WithTimeout(tab.Ctx, time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("Boolean("+expr+")"))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			body, _ := chromedp.Run(tab.Ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
			tab.T.Fatalf("waited %v for %s (error: %v); the page shows:\n%s", Wait, expr, err, body)
		}
		<-tick.C
	}
}

// ShownExpr is a JavaScript expression that is true when the element that
// css selects is rendered where a person can see it: it takes up room on
// the page, and neither its style nor an ancestor's hides it (display,
// visibility, opacity). It checks what is rendered, not the hidden
// attribute, which a stylesheet can override.
func ShownExpr(css string) string {
	return fmt.Sprintf(`((el) => !!el && el.getClientRects().length > 0 && el.checkVisibility({checkOpacity: true, checkVisibilityCSS: true}))(document.querySelector(%q))`, css)
}

// WaitShown waits until the element that css selects is shown, or, with
// shown false, until it is not (see ShownExpr).
func (tab *Tab) WaitShown(css string, shown bool) {
	tab.T.Helper()
	expr := ShownExpr(css)
	if !shown {
		expr = "!" + expr
	}
	tab.WaitFor(expr)
}

// Screenshot saves a PNG of the tab's viewport to path.
func (tab *Tab) Screenshot(path string) {
	tab.T.Helper()
	ctx, cancel := context.WithTimeout(tab.Ctx, Wait)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		tab.T.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		tab.T.Fatal(err)
	}
}
