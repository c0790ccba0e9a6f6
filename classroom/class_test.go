package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"

	"github.com/wszero/wszero/classroom/internal/lessontest"
)

// joinStudents connects n students, each a program speaking the protocol,
// and returns their connections (closed when the test ends).
func joinStudents(t *testing.T, p *lessontest.Program, n int) []*websocket.Conn {
	t.Helper()
	ws := "ws" + strings.TrimPrefix(p.URL, "http") + "ws"
	var conns []*websocket.Conn
	for i := 1; i <= n; i++ {
		conn, _, err := websocket.DefaultDialer.Dial(ws, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		join := fmt.Sprintf(`{"op": "join", "name": "Student %02d with a long name", "key": "key-%d", "_ref": 1}`, i, i)
		if err := conn.WriteMessage(websocket.TextMessage, []byte(join)); err != nil {
			t.Fatal(err)
		}
		for { // the reply, after what came before it
			var m struct{ Op, Msg string }
			if err := conn.ReadJSON(&m); err != nil {
				t.Fatal(err)
			}
			if m.Op == "error" {
				t.Fatalf("student %d could not join: %s", i, m.Msg)
			}
			if m.Op == "_reply" {
				break
			}
		}
		conns = append(conns, conn)
	}
	return conns
}

// inView is true when the element css selects is wholly inside the
// window, without scrolling.
func inView(css string) string {
	return fmt.Sprintf(`((r) => r.top >= 0 && r.bottom <= innerHeight && r.left >= 0 && r.right <= innerWidth)(document.querySelector(%q).getBoundingClientRect())`, css)
}

// saveScreenshot keeps what the page shows in $WSZERO_SCREENSHOTS, when
// set, for a person to look at.
func saveScreenshot(t *testing.T, p *lessontest.Page, name string) {
	dir := os.Getenv("WSZERO_SCREENSHOTS")
	if dir == "" {
		return
	}
	png, err := chromedp.Run(p.Context(), chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestAClassOf40OnALaptop: with 40 students, the teacher's controls, the
// question's results and Reveal are all in view on a 1366×768 laptop,
// and every student is listed; on a phone, the controls come first.
func TestAClassOf40OnALaptop(t *testing.T) {
	p, code := startClassroom(t)
	joinStudents(t, p, 40)
	browser := lessontest.Browser(t)
	teacher := lessontest.Open(t, browser, p.URL+"teacher?code="+code)
	teacher.Do(chromedp.EmulateViewport(1366, 768))
	teacher.WaitText("#count", "40")
	teacher.WaitFor(`document.querySelectorAll("#students li").length === 40`)
	teacher.Type("#text", "What did you like best today?")
	teacher.Click("#ask button")
	teacher.WaitText("#q-info", "0 of 40 answered · everyone")
	for _, css := range []string{"#split", "#lock-screens", "#groups", "#text", "#ask button", "#reveal", "#q-info"} {
		teacher.WaitShown(css, true)
		if !lessontest.Eval[bool](teacher, inView(css)) {
			t.Errorf("%s is not in view on a 1366×768 screen", css)
		}
	}
	if !lessontest.Eval[bool](teacher, inView("#students li:first-child")) {
		t.Error("the first students are not in view beside the controls")
	}
	if !lessontest.Eval[bool](teacher, inView("#class")) {
		t.Error("the list of students runs off the screen: it should scroll inside its card")
	}
	if lessontest.Eval[bool](teacher, `document.documentElement.scrollWidth > innerWidth || [...document.querySelectorAll("#ask input")].some((el) => el.getBoundingClientRect().right > document.getElementById("ask").getBoundingClientRect().right)`) {
		t.Error("an input sticks out of the question's card")
	}
	saveScreenshot(t, teacher, "teacher-40-at-1366x768.png")

	t.Run("on a phone the controls come first", func(t *testing.T) {
		teacher := teacher.In(t)
		teacher.Do(chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
		teacher.Run(`scrollTo(0, 0)`)
		for _, css := range []string{"#split", "#lock-screens"} {
			if !lessontest.Eval[bool](teacher, inView(css)) {
				t.Errorf("%s is not in view on a phone", css)
			}
		}
		if lessontest.Eval[bool](teacher, `document.documentElement.scrollWidth > innerWidth`) {
			t.Error("the teacher's page is wider than a phone's screen")
		}
		saveScreenshot(t, teacher, "teacher-40-on-a-phone.png")
	})
}

// TestAStudentComesBack: a tab closed and opened again is the same
// student, not a second one; a second tab with the same key (a duplicated
// tab) pauses the older one, which says why and can take over again; two
// students cannot share a name; and a student who is away can be removed.
func TestAStudentComesBack(t *testing.T) {
	p, code := startClassroom(t)
	browser := lessontest.Browser(t)
	teacher := lessontest.Open(t, browser, p.URL+"teacher?code="+code)

	first := lessontest.Open(t, browser, p.URL)
	first.Type("#name", "Ada")
	first.Click("#join button")
	first.WaitShown("#room", true)
	teacher.WaitText("#count", "1")
	first.Close()
	teacher.WaitText("#count", "1 · 1 away")

	// The tab is opened again: the browser offers the name, and joining
	// with it is Ada again, with no "Ada (away)" beside her.
	again := lessontest.Open(t, browser, p.URL)
	again.WaitFor(`document.getElementById("name").value === "Ada"`)
	again.Click("#join button")
	again.WaitText("#me", "Ada")
	teacher.WaitText("#count", "1")
	teacher.WaitFor(`document.querySelectorAll("#students li").length === 1`)

	t.Run("a duplicated tab pauses the older one", func(t *testing.T) {
		key := lessontest.Eval[string](again.In(t), `sessionStorage.getItem("classroom-key")`)
		twin := lessontest.Open(t, browser, p.URL)
		twin.In(t).Run(fmt.Sprintf(`sessionStorage.setItem("classroom-key", %q); sessionStorage.setItem("classroom-name", "Ada"); location.reload()`, key))
		twin.In(t).WaitText("#me", "Ada")
		again.In(t).WaitShown("#replaced", true)
		again.In(t).Click("#use-this-tab")
		again.In(t).WaitShown("#replaced", false)
		twin.In(t).WaitShown("#replaced", true)
		teacher.In(t).WaitText("#count", "1")
	})

	t.Run("a second student cannot take a name that is here", func(t *testing.T) {
		// Another device, as its page's script would send it.
		conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(p.URL, "http")+"ws", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if err := conn.WriteJSON(map[string]any{"op": "join", "name": "ada", "key": "another-device", "_ref": 1}); err != nil {
			t.Fatal(err)
		}
		var m struct{ Op, Msg string }
		if err := conn.ReadJSON(&m); err != nil {
			t.Fatal(err)
		}
		if want := "someone called Ada is already here: add the first letter of your surname, like ada B"; m.Msg != want {
			t.Errorf("a second Ada got %q, want %q", m.Msg, want)
		}
	})

	t.Run("a student who is away can be removed", func(t *testing.T) {
		teacher := teacher.In(t)
		conns := joinStudents(t, p, 1) // "Student 01 …", then gone
		teacher.WaitText("#count", "2")
		conns[0].Close()
		teacher.WaitText("#count", "2 · 1 away")
		teacher.Click("#students li.away .remove")
		teacher.WaitText("#count", "1")
		teacher.WaitFor(`document.querySelectorAll("#students li").length === 1`)
	})
}

// TestAScriptCannotTakeTheClassDown: one connection is one student
// however many joins it sends; a class takes maxStudents; and the
// teacher's page still logs in and stays usable after a flood of joins
// and answers.
func TestAScriptCannotTakeTheClassDown(t *testing.T) {
	p, code := startClassroom(t)
	ws := "ws" + strings.TrimPrefix(p.URL, "http") + "ws"
	script, _, err := websocket.DefaultDialer.Dial(ws, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer script.Close()
	const joins = 3000
	go func() {
		for i := 0; i < joins; i++ {
			msg := fmt.Sprintf(`{"op":"join","name":"bot %d","key":"bot-%d","_ref":%d}`, i, i, i+1)
			if script.WriteMessage(websocket.TextMessage, []byte(msg)) != nil {
				return
			}
		}
	}()
	refused := 0
	for answered := 0; answered < joins; {
		var m struct {
			Op  string
			Msg string
			Ref int `json:"_ref"`
		}
		if err := script.ReadJSON(&m); err != nil {
			break // cut off for sending too fast: fine, as long as the class stands
		}
		if m.Op == "_reply" || (m.Op == "error" && m.Ref > 0) {
			answered++
			if m.Op == "error" {
				refused++
			}
		}
	}
	if refused == 0 {
		t.Error("every join from one connection was taken")
	}

	// Many connections: the class fills, then says so.
	full := ""
	for i := 0; i < maxStudents+5 && full == ""; i++ {
		conn, _, err := websocket.DefaultDialer.Dial(ws, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		if err := conn.WriteJSON(map[string]any{"op": "join", "name": fmt.Sprint("pupil ", i), "key": fmt.Sprint("pupil-", i), "_ref": 1}); err != nil {
			t.Fatal(err)
		}
		var m struct{ Op, Msg string }
		if err := conn.ReadJSON(&m); err != nil {
			t.Fatal(err)
		}
		if m.Op == "error" {
			full = m.Msg
		}
	}
	if want := fmt.Sprintf("the class is full: it takes %d students", maxStudents); full != want {
		t.Errorf("past the limit, a join got %q, want %q", full, want)
	}

	teacher := lessontest.Open(t, lessontest.Browser(t), p.URL+"teacher?code="+code)
	teacher.WaitContains("#count", fmt.Sprint(maxStudents)) // the script, cut off for its flood, may be away
	teacher.Type("#text", "Still here?")
	teacher.Click("#ask button")
	teacher.WaitContains("#q-info", fmt.Sprintf("0 of %d answered", maxStudents))
}

// TestAStudentKeepsTheRoundAcrossABlip: a student's Wi-Fi drops in the
// middle of a question: the teacher sees them away, the answer they give
// meanwhile arrives when the network is back, and they are still the same
// student in the same round (not a second one, not back at the join form).
func TestAStudentKeepsTheRoundAcrossABlip(t *testing.T) {
	p, code := startClassroom(t)
	proxy, url := lessontest.Behind(t, p)
	browser := lessontest.Browser(t)
	teacher := lessontest.Open(t, browser, p.URL+"teacher?code="+code)
	ada := lessontest.Open(t, browser, url)
	ada.Type("#name", "Ada")
	ada.Click("#join button")
	ada.WaitShown("#room", true)
	teacher.WaitText("#count", "1")
	teacher.Type("#text", "What is 2 + 2?")
	teacher.Click("#ask button")
	ada.WaitShown("#question", true)
	lessontest.Blip(proxy, func() {
		teacher.WaitText("#count", "1 · 1 away")
		ada.Type("#free-answer", "4")
		ada.Click("#free button")
	}, ada)
	teacher.WaitText("#count", "1")
	teacher.WaitContains("#q-info", "1 of 1 answered")
	teacher.WaitFor(`document.querySelectorAll("#students li").length === 1`)
	ada.WaitShown("#question", true)
	ada.WaitShown("#join", false)
}
