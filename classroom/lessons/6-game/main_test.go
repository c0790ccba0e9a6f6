package main

import (
	"strconv"
	"strings"
	"testing"

	"github.com/wszero/wszero/classroom/internal/lessontest"
)

func TestMain(m *testing.M) { lessontest.Main(m, main) }

// TestGame joins two players: the clock ticks by itself, and taps score for
// everyone to see.
func TestGame(t *testing.T) {
	program := lessontest.Start(t)
	browser := lessontest.Browser(t)
	ann := lessontest.Open(t, browser, program.URL)
	bob := lessontest.Open(t, browser, program.URL)
	ann.WaitContains("#clock", "seconds left")
	first := lessontest.Eval[string](ann, `document.getElementById("clock").textContent`)
	ann.WaitFor(`document.getElementById("clock").textContent !== ` + strconv.Quote(first))
	// Tapping before playing: the page says what to do (the handler crashed).
	ann.Click("#tap")
	ann.WaitContains(".problem", "type your name and press Play first")
	ann.Type("#name", "Ann")
	ann.Click("#join")
	bob.Type("#name", "Bob")
	bob.Click("#join")
	for range 3 {
		ann.Click("#tap")
	}
	bob.Click("#tap")
	bob.WaitText("#scores li:first-child", "Ann: 3")
	ann.WaitText("#scores li:last-child", "Bob: 1")

	// A new name replaces the old one, and a player who leaves leaves the
	// list: the scores keep only who is playing.
	bob.Type("#name", "Bobby")
	bob.Click("#join")
	bob.Click("#tap")
	ann.WaitFor(`[...document.querySelectorAll("#scores li")].map((li) => li.textContent).join() === "Ann: 3,Bobby: 1"`)
	bob.Close()
	ann.Click("#tap")
	ann.WaitFor(`[...document.querySelectorAll("#scores li")].map((li) => li.textContent).join() === "Ann: 4"`)
}

// TestGameAfterABlip: a player whose network drops keeps playing as
// herself: her taps still count for her name, and nobody's score is lost.
func TestGameAfterABlip(t *testing.T) {
	program := lessontest.Start(t)
	proxy, url := lessontest.Behind(t, program)
	browser := lessontest.Browser(t)
	ann := lessontest.Open(t, browser, url)
	ann.Type("#name", "Ann")
	ann.Click("#join")
	ann.Click("#tap")
	ann.WaitContains("#scores", "Ann: 1")
	lessontest.Blip(proxy, func() { ann.Click("#tap") }, ann)
	ann.Click("#tap")
	ann.WaitContains("#scores", "Ann: 3")
	if got := lessontest.Eval[string](ann, `document.body.innerText`); strings.Contains(got, "press Play first") {
		t.Errorf("after the blip the page shows %q", got)
	}
}
