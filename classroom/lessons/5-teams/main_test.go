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

// TestTeamsAfterABlip: the network drops for everyone in the middle of
// the game, and comes back: the players are still on their teams, with
// their names, and what Ann said while it was down reaches her team once.
func TestTeamsAfterABlip(t *testing.T) {
	program := lessontest.Start(t)
	proxy, url := lessontest.Behind(t, program)
	browser := lessontest.Browser(t)
	ann := lessontest.Open(t, browser, url)
	bob := lessontest.Open(t, browser, url)
	cat := lessontest.Open(t, browser, url)
	for _, p := range []struct {
		page       *lessontest.Page
		name, team string
	}{{ann, "Ann", "red"}, {bob, "Bob", "red"}, {cat, "Cat", "blue"}} {
		p.page.Type("#name", p.name)
		p.page.Click("#" + p.team)
		p.page.WaitContains("#messages", p.name+": has joined team "+p.team)
	}
	lessontest.Blip(proxy, func() {
		ann.Type("#text", "said while the network was down")
		ann.Click("#say")
	}, ann, bob, cat)
	bob.WaitContains("#messages", "Ann: said while the network was down")
	bob.Type("#text", "still here")
	bob.Click("#say")
	ann.WaitContains("#messages", "Bob: still here")
	if got := lessontest.Eval[string](ann, `document.getElementById("messages").textContent`); strings.Count(got, "said while the network was down") != 1 {
		t.Errorf("Ann's line did not arrive once: %q", got)
	}
	cat.Type("#text", "blue after the blip")
	cat.Click("#say")
	cat.WaitContains("#messages", "Cat: blue after the blip")
	for _, p := range []*lessontest.Page{ann, bob, cat} {
		if got := lessontest.Eval[string](p, `document.body.innerText`); strings.Contains(got, "join a team first") || strings.Contains(got, "null") {
			t.Errorf("after the blip a page shows %q", got)
		}
	}
	if got := lessontest.Eval[string](cat, `document.getElementById("messages").textContent`); strings.Contains(got, "red") || strings.Contains(got, "still here") {
		t.Errorf("team blue heard team red: %q", got)
	}
}
