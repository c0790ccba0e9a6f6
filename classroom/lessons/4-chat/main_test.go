package main

import (
	"strings"
	"testing"

	"github.com/wszero/wszero/classroom/internal/lessontest"
)

func TestMain(m *testing.M) { lessontest.Main(m, main) }

// TestChat joins with two names and talks.
func TestChat(t *testing.T) {
	program := lessontest.Start(t)
	browser := lessontest.Browser(t)
	ann := lessontest.Open(t, browser, program.URL)
	bob := lessontest.Open(t, browser, program.URL)
	// Talking before joining: the page says what to do (it showed "null: …").
	ann.Type("#text", "too early")
	ann.Click("#say")
	ann.WaitContains(".problem", "join the chat first: type your name and press Join")
	ann.Click("#join")
	ann.WaitContains(".problem:last-of-type", "type your name in the box first")
	ann.Type("#name", "Ann")
	ann.Click("#join")
	bob.WaitContains("#messages", "Ann: has joined")
	bob.Type("#name", "<i>Bob</i>")
	bob.Click("#join")
	bob.Type("#text", "hi Ann")
	bob.Click("#say")
	ann.WaitContains("#messages", "<i>Bob</i>: hi Ann")
	if lessontest.Eval[bool](ann, `document.querySelector("#messages i") !== null`) {
		t.Error("a name made of HTML became HTML in the page")
	}
}

// TestChatAfterABlip: after the network drops and comes back, Ann is
// still Ann (her lines never say null), and what she said meanwhile
// arrives once.
func TestChatAfterABlip(t *testing.T) {
	program := lessontest.Start(t)
	proxy, url := lessontest.Behind(t, program)
	browser := lessontest.Browser(t)
	ann := lessontest.Open(t, browser, url)
	bob := lessontest.Open(t, browser, url)
	ann.Type("#name", "Ann")
	ann.Click("#join")
	bob.WaitContains("#messages", "Ann: has joined")
	lessontest.Blip(proxy, func() {
		ann.Type("#text", "are you there?")
		ann.Click("#say")
	}, ann, bob)
	bob.WaitContains("#messages", "Ann: are you there?")
	ann.Type("#text", "back")
	ann.Click("#say")
	bob.WaitContains("#messages", "Ann: back")
	got := lessontest.Eval[string](bob, `document.getElementById("messages").textContent`)
	if strings.Contains(got, "null") || strings.Count(got, "are you there?") != 1 {
		t.Errorf("Bob's page shows %q", got)
	}
}
