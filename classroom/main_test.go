package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/wszero/wszero/classroom/internal/lessontest"
	"github.com/wszero/wszero/internal/headless"
)

func TestMain(m *testing.M) { lessontest.Main(m, main) }

var printedCode = regexp.MustCompile(`/teacher\?code=([A-Z0-9]+)`)

// startClassroom runs the app as go run ./classroom does, and returns it
// with the teacher's code it printed.
func startClassroom(t *testing.T) (*lessontest.Program, string) {
	t.Helper()
	p := lessontest.Start(t)
	m := printedCode.FindStringSubmatch(p.Output())
	if m == nil {
		t.Fatalf("the classroom printed no teacher's code:\n%s", p.Output())
	}
	return p, m[1]
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestNoCodeNoTeacherPage: the teacher's page is served only with the
// code; without it, a form asks for it.
func TestNoCodeNoTeacherPage(t *testing.T) {
	p, code := startClassroom(t)
	for _, path := range []string{"teacher", "teacher?code=", "teacher?code=WRONG1", "teacher.html", "code.html"} {
		status, body := get(t, p.URL+path)
		if strings.Contains(body, "teacher_login") {
			t.Errorf("/%s served the teacher's page (status %d)", path, status)
		}
		if path == "teacher?code=WRONG1" && (status != http.StatusForbidden || !strings.Contains(body, "Type the teacher's code")) {
			t.Errorf("/%s: status %d, want 403 and the form", path, status)
		}
	}
	status, body := get(t, p.URL+"teacher?code="+strings.ToLower(code))
	if status != http.StatusOK || !strings.Contains(body, "teacher_login") {
		t.Errorf("/teacher with the code: status %d, not the teacher's page", status)
	}
}

// TestAQuestionRound is a whole lesson: one teacher and three students, one
// of them on a phone-sized screen, go through groups, a multiple-choice
// question to everyone, revealing its answer, locking the screens, and a
// free-text question to one group.
func TestAQuestionRound(t *testing.T) {
	p, code := startClassroom(t)
	browser := lessontest.Browser(t)

	teacher := lessontest.Open(t, browser, p.URL+"teacher?code="+code)
	teacher.WaitText("#state", "connected")
	teacher.WaitShown("#nobody", true)

	names := []string{"Ann", "Bob", "<b>Cat</b>"}
	students := map[string]*lessontest.Page{}
	for i, name := range names {
		s := lessontest.Open(t, browser, p.URL)
		if i == 0 { // a phone
			s.Do(chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
		}
		s.Type("#name", name)
		s.Click("#join button")
		s.WaitText("#me", name)
		students[name] = s
	}
	ann, bob, cat := students["Ann"], students["Bob"], students["<b>Cat</b>"]
	teacher.WaitText("#count", "3")
	roster := lessontest.Eval[string](teacher, `document.getElementById("students").textContent`)
	for _, name := range names {
		if !strings.Contains(roster, name) {
			t.Errorf("the teacher's list %q does not show %q", roster, name)
		}
	}
	if lessontest.Eval[bool](teacher, `document.querySelector("#students b") !== null`) {
		t.Error("a name made of HTML became HTML in the teacher's page")
	}

	t.Run("a student page cannot call a teacher op", func(t *testing.T) {
		bob := bob.In(t)
		for _, call := range []string{
			`call("teacher_lock", {locked: true})`,
			`call("teacher_ask", {text: "free holiday?"})`,
			`call("teacher_reveal")`,
			`call("teacher_split", {groups: 3})`,
			`call("teacher_anything")`,
			`call("teacher_login", {code: "WRONG1"}).then(() => call("teacher_lock", {locked: true}))`,
		} {
			msg := lessontest.Eval[string](bob, call+`.then(() => "it worked", (err) => err.message)`)
			if msg != "only the teacher can do that" && msg != "that is not the code the classroom printed" && !strings.HasPrefix(msg, `no handler for "teacher_anything"`) {
				t.Errorf("%s: %q", call, msg)
			}
		}
		if lessontest.Eval[bool](bob, headless.ShownExpr("#lock")+" || "+headless.ShownExpr("#question")) {
			t.Error("a student's teacher op changed the classroom")
		}
	})

	teacher.Do(chromedp.SetValue(chromedp.CSS(`#groups`), "2"))
	teacher.Click("#split")
	teacher.WaitFor(`document.querySelectorAll("#students .tag").length === 3`)
	for _, s := range students {
		s.WaitContains("#group", "Group ")
	}

	// A multiple-choice question to everyone; 4 is right.
	teacher.Type("#text", "2 + 2 = ?")
	for i, choice := range []string{"3", "4", "5"} {
		teacher.Type(fmt.Sprintf("#choice-inputs .row:nth-child(%d) .choice", i+1), choice)
	}
	teacher.Click("#choice-inputs .row:nth-child(2) [type=radio]")
	teacher.Click("#ask button")
	for name, s := range students {
		s.WaitText("#question-text", "2 + 2 = ?")
		answer := "4"
		if name == "<b>Cat</b>" {
			answer = "5"
		}
		s.Click(fmt.Sprintf(`#choices button:nth-child(%s)`, map[string]string{"4": "2", "5": "3"}[answer]))
		s.WaitContains("#result", "Your answer: "+answer)
	}
	teacher.WaitText("#q-info", "3 of 3 answered · everyone")
	bars := lessontest.Eval[string](teacher, `[...document.querySelectorAll("#chart .bar")].map((b) => b.querySelector(".label").textContent + "=" + b.querySelector(".count").textContent).join(" ")`)
	if bars != "3=0 4=2 5=1" {
		t.Errorf("the teacher's chart shows %q, want 3=0 4=2 5=1", bars)
	}
	if w := lessontest.Eval[string](teacher, `document.querySelector("#chart .bar:nth-child(2) .fill").style.width`); w != "100%" {
		t.Errorf("the longest bar is %s wide", w)
	}

	teacher.Click("#reveal")
	ann.WaitContains("#result", "Right! 🎉 The answer was: 4")
	bob.WaitContains("#result", "Right!")
	cat.WaitContains("#result", "Not this time. The answer was: 4")
	teacher.WaitFor(`document.querySelector("#chart .bar.correct .label")?.textContent === "4"`)
	if os.Getenv("WSZERO_SCREENSHOT") == "1" {
		png, err := chromedp.Run(teacher.Context(), chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile("teacher.png", png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("the teacher locks and unlocks the screens", func(t *testing.T) {
		teacher := teacher.In(t)
		teacher.Click("#lock-screens")
		for _, s := range students {
			s.In(t).WaitShown("#lock", true)
		}
		teacher.WaitText("#lock-screens", "Unlock screens")
		msg := lessontest.Eval[string](ann.In(t), `call("answer", {question: 1, answer: "3"}).then(() => "it worked", (err) => err.message)`)
		if msg != "your screen is locked: wait for the teacher" {
			t.Errorf("a locked student answered: %q", msg)
		}
		teacher.Click("#lock-screens")
		for _, s := range students {
			s.In(t).WaitShown("#lock", false)
		}
	})

	t.Run("a free-text question to one group reaches that group only", func(t *testing.T) {
		teacher := teacher.In(t)
		group1, group2 := []*lessontest.Page{}, []*lessontest.Page{}
		for _, s := range students {
			if lessontest.Eval[string](s, `document.getElementById("group").textContent`) == "Group 1" {
				group1 = append(group1, s.In(t))
			} else {
				group2 = append(group2, s.In(t))
			}
		}
		if len(group1) == 0 || len(group2) == 0 {
			t.Fatalf("groups of %d and %d students", len(group1), len(group2))
		}
		for i := 1; i <= 4; i++ {
			teacher.Type(fmt.Sprintf("#choice-inputs .row:nth-child(%d) .choice", i), "")
		}
		teacher.Type("#text", "The capital of France?")
		teacher.Type("#correct-text", "Paris")
		teacher.Do(chromedp.SetValue(chromedp.CSS(`#to`), "1"))
		teacher.Click("#ask button")
		// No answer yet: the teacher's page shows the question, an empty
		// chart and a Reveal button that works.
		teacher.WaitText("#q-info", fmt.Sprintf("0 of %d answered · group 1", len(group1)))
		teacher.WaitFor(`!document.getElementById("reveal").disabled`)
		teacher.WaitShown("#results", true)
		for _, s := range group1 {
			s.WaitText("#question-text", "The capital of France?")
			s.Type("#free-answer", "paris ")
			s.Click("#free button")
			s.WaitContains("#result", "Your answer: paris")
		}
		teacher.WaitText("#q-info", fmt.Sprintf("%d of %d answered · group 1", len(group1), len(group1)))
		teacher.WaitFor(fmt.Sprintf(`document.querySelector("#chart .bar .count")?.textContent === "%d"`, len(group1)))
		for _, s := range group2 {
			s.WaitShown("#question", false)
		}
		teacher.Click("#reveal")
		group1[0].WaitContains("#result", "Right! 🎉 The answer was: Paris")
	})

	t.Run("the phone's page fits its screen", func(t *testing.T) {
		if lessontest.Eval[bool](ann.In(t), `document.documentElement.scrollWidth > window.innerWidth`) {
			t.Error("the student's page is wider than a phone's screen")
		}
	})
}

// TestAPortInUseSaysWhatToDo: the classroom started twice says so, in words.
func TestAPortInUseSaysWhatToDo(t *testing.T) {
	first, _ := startClassroom(t)
	second := lessontest.Launch(t, "", first.Port)
	if code := second.WaitExit(t); code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
	next, err := strconv.Atoi(first.Port)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("wszero: port %s is already in use: another program (maybe an earlier run of this one) is using it. "+
		"Stop that program with Ctrl-C in its window, or choose another port, like PORT=%d", first.Port, next+1)
	if !strings.Contains(second.Output(), want) {
		t.Errorf("it printed:\n%s\nwant a line with:\n%s", second.Output(), want)
	}
}

// TestAChosenCodeIsNotPrinted: with CLASSROOM_CODE set, the terminal (on
// the projector, perhaps) does not show it, and the code opens the
// teacher's page all the same.
func TestAChosenCodeIsNotPrinted(t *testing.T) {
	p := lessontest.Start(t, "CLASSROOM_CODE=secret 7") // typed in lower case, with a space
	out := p.Output()
	if strings.Contains(strings.ToUpper(out), "SECRET") {
		t.Errorf("the terminal shows the teacher's code:\n%s", out)
	}
	for _, want := range []string{"/teacher and type your code (the one in CLASSROOM_CODE)", "Stopping the classroom (Ctrl-C) ends the round"} {
		if !strings.Contains(out, want) {
			t.Errorf("the terminal does not say %q:\n%s", want, out)
		}
	}
	status, body := get(t, p.URL+"teacher?code=SECRET7")
	if status != http.StatusOK || !strings.Contains(body, "teacher_login") {
		t.Errorf("/teacher with the chosen code: status %d, not the teacher's page", status)
	}
}
