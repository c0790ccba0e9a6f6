// Package browsertest drives headless Chromium (through chromedp) against
// real wszero servers on loopback, to test the browser client and the
// static file bundling as a person would see them: the classic script and
// the ES module, calls and their errors, what the console says,
// reconnection, keepalive, mounting under a prefix, other origins, and
// JSX bundled on request.
//
// It holds tests only. They share one browser (see TestBrowser), each test
// in tabs of its own. Without Chromium they are skipped, except under
// CI=true, where they fail (see internal/headless).
package browsertest
