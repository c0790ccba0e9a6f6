package main

import (
	"strings"
	"testing"

	"github.com/wszero/wszero/classroom/internal/lessontest"
)

func TestMain(m *testing.M) { lessontest.Main(m, main) }

// TestTeams has two players on red and one on blue: red talk reaches red
// only.
func TestTeams(t *testing.T) {
	program := lessontest.Start(t)
	browser := lessontest.Browser(t)
	ann := lessontest.Open(t, browser, program.URL)
	bob := lessontest.Open(t, browser, program.URL)
	cat := lessontest.Open(t, browser, program.URL)
	// Talking before joining a team: the page says what to do (the handler crashed).
	ann.Type("#text", "too early")
	ann.Click("#say")
	ann.WaitContains(".problem", "join a team first: press Join team red or Join team blue")
	for _, p := range []struct {
		page       *lessontest.Page
		name, team string
	}{{ann, "Ann", "red"}, {bob, "Bob", "red"}, {cat, "Cat", "blue"}} {
		p.page.Type("#name", p.name)
		p.page.Click("#" + p.team)
		p.page.WaitContains("#messages", p.name+": has joined team "+p.team)
	}
	ann.Type("#text", "red secret")
	ann.Click("#say")
	bob.WaitContains("#messages", "Ann: red secret")
	cat.Type("#text", "blue secret")
	cat.Click("#say")
	cat.WaitContains("#messages", "Cat: blue secret")
	// Ann's line reached the server before Cat's, and each page hears its
	// own team in order: by now Cat would have heard Ann.
	if got := lessontest.Eval[string](cat, `document.getElementById("messages").textContent`); strings.Contains(got, "red") {
		t.Errorf("team blue heard team red: %q", got)
	}
	bob.Type("#text", "done")
	bob.Click("#say")
	ann.WaitContains("#messages", "Bob: done")
	if got := lessontest.Eval[string](ann, `document.getElementById("messages").textContent`); strings.Contains(got, "blue secret") {
		t.Errorf("team red heard team blue: %q", got)
	}
}
