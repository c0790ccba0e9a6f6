package main

import (
	"testing"

	"github.com/wszero/wszero/classroom/internal/lessontest"
)

func TestMain(m *testing.M) { lessontest.Main(m, main) }

// TestEcho shouts and hears the echo, on this page only.
func TestEcho(t *testing.T) {
	program := lessontest.Start(t)
	browser := lessontest.Browser(t)
	page := lessontest.Open(t, browser, program.URL)
	other := lessontest.Open(t, browser, program.URL)
	page.Type("#text", "hello <b>cave</b>")
	page.Click("#shout")
	page.WaitText("#echo", "hello <b>cave</b>... hello <b>cave</b>...")
	// Another shout from the same page comes back after the first, so the
	// other page had every chance to hear the first one.
	page.Type("#text", "again")
	page.Click("#shout")
	page.WaitText("#echo", "again... again...")
	if got := lessontest.Eval[string](other, `document.getElementById("echo").textContent`); got != "" {
		t.Errorf("another page heard the echo: %q", got)
	}
}
