package main

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wszero/wszero"
)

// The groups every client of the classroom is in: students once they have
// a name, teachers once they have given the code.
const (
	studentsGroup = "students"
	teachersGroup = "teachers"
)

// teacherOps are the ops only a teacher may send; the guard refuses them
// to everyone else.
var teacherOps = map[string]bool{
	"teacher_split":  true,
	"teacher_ask":    true,
	"teacher_reveal": true,
	"teacher_lock":   true,
	"teacher_remove": true,
}

// classroom is the app's state. Handlers run one at a time on wszero's
// handler loop, so it needs no lock.
type classroom struct {
	s        *wszero.Server
	code     string
	students map[string]*student // by the key each student's page makes up
	order    []string            // keys in the order students arrived
	groups   int                 // how many groups the class is split into; 0: none
	question *question
	locked   bool
	lastID   int // the id of the last student to arrive
	guesses  *guessLimits

	updatePending bool // an update of the teachers' pages is on its way
}

// student is one student, across reconnections of their page.
type student struct {
	key, name string
	id        int            // the teacher's page names the student by it (the key is the student's own)
	group     int            // 1…groups, or 0
	client    *wszero.Client // nil while their page is away
}

// here reports whether the student's page is connected: not closed, and
// not away in a network blip.
func (st *student) here() bool { return st.client != nil && !st.client.Away() }

// question is the question being asked.
type question struct {
	ID       int      `json:"id"`
	Text     string   `json:"text"`
	Choices  []string `json:"choices"` // empty: a free-text question
	Group    int      `json:"group"`   // 0: everyone
	correct  string
	answers  map[string]string // by student key
	revealed bool
}

func newClassroom(code string, terminal io.Writer) *classroom {
	c := &classroom{code: code, students: map[string]*student{}, guesses: newGuessLimits(terminal)}
	c.s = wszero.New(wszero.WithOpGuard(func(cl *wszero.Client, op string) error {
		if (teacherOps[op] || strings.HasPrefix(op, "teacher_")) && op != "teacher_login" && !cl.InGroup(teachersGroup) {
			return errors.New("only the teacher can do that")
		}
		return nil
	}))
	c.addHandlers()
	return c
}

func groupName(n int) string { return fmt.Sprintf("group-%d", n) }

func (c *classroom) addHandlers() {
	s := c.s

	// A student's page joins with a name, and again by itself after a
	// reconnection, with the same key.
	s.On("join", func(cl *wszero.Client, p struct{ Name, Key string }) (wszero.Params, error) {
		name := strings.Join(strings.Fields(p.Name), " ")
		if name == "" || utf8.RuneCountInString(name) > 30 {
			return nil, errors.New("type a name of 1 to 30 letters")
		}
		if p.Key == "" || len(p.Key) > 64 {
			return nil, errors.New("reload the page and try again")
		}
		if cl.InGroup(teachersGroup) {
			return nil, errors.New("this page is the teacher's")
		}
		if key, _ := cl.Get("key").(string); key != "" && key != p.Key {
			return nil, errors.New("this page has joined already: reload it to join as someone else")
		}
		st := c.students[p.Key]
		if st == nil || !strings.EqualFold(st.name, name) {
			same := c.studentNamed(name)
			switch {
			case same != nil && same != st && same.here():
				return nil, fmt.Errorf("someone called %s is already here: add the first letter of your surname, like %s %s", same.name, name, "B")
			case same != nil && same != st:
				// The same name, away: the student came back on another
				// device, or in a browser that forgot them.
				c.rekey(same, p.Key)
				if st != nil {
					c.remove(st)
				}
				st = same
			case st == nil && len(c.students) >= maxStudents:
				return nil, fmt.Errorf("the class is full: it takes %d students", maxStudents)
			case st == nil:
				c.lastID++
				st = &student{key: p.Key, id: c.lastID}
				c.students[p.Key] = st
				c.order = append(c.order, p.Key)
			}
		}
		if st.client != nil && st.client != cl {
			// An older tab of the same student: it stops, and says so.
			_ = st.client.Send("replaced", nil)
			st.client.Close()
		}
		st.name, st.client = name, cl
		cl.Set("key", p.Key)
		if err := cl.AddToGroup(studentsGroup); err != nil {
			return nil, err
		}
		if st.group > 0 {
			_ = cl.AddToGroup(groupName(st.group))
		}
		c.updateTeachers()
		return c.studentState(st), nil
	})

	s.On("answer", func(cl *wszero.Client, p struct {
		Question int
		Answer   string
	}) error {
		st := c.studentOf(cl)
		q := c.question
		switch {
		case st == nil:
			return errors.New("type your name first")
		case c.locked:
			return errors.New("your screen is locked: wait for the teacher")
		case q == nil || q.ID != p.Question || !c.asks(q, st):
			return errors.New("that question is not open")
		case q.revealed:
			return errors.New("the answer has been revealed: wait for the next question")
		}
		answer := strings.TrimSpace(p.Answer)
		if answer == "" || utf8.RuneCountInString(answer) > 200 {
			return errors.New("type an answer of 1 to 200 letters")
		}
		if len(q.Choices) > 0 && !slices.Contains(q.Choices, answer) {
			return errors.New("choose one of the answers")
		}
		q.answers[st.key] = answer
		c.updateTeachers()
		return nil
	})

	s.On("disconnect", func(cl *wszero.Client) {
		if st := c.studentOf(cl); st != nil {
			st.client = nil
			c.updateTeachers()
		}
	})
	// A blip (Wi-Fi, a laptop lid): the page is away, and will most likely
	// resume, as the same client, still in the round; the teacher sees it.
	s.On("client_away", func(cl *wszero.Client) {
		if c.studentOf(cl) != nil {
			c.updateTeachers()
		}
	})
	s.On("client_back", func(cl *wszero.Client) {
		if c.studentOf(cl) != nil {
			c.updateTeachers()
		}
	})

	// The teacher's page gives the code; then its client is a teacher.
	s.On("teacher_login", func(cl *wszero.Client, p struct{ Code string }) (wszero.Params, error) {
		if !c.guesses.allowed(cl.Addr()) {
			return nil, errors.New(tooMany)
		}
		if !codeMatches(p.Code, c.code) {
			c.guesses.wrongCode(cl.Addr())
			tries, _ := cl.Get("tries").(int)
			cl.Set("tries", tries+1)
			if tries+1 >= 5 {
				cl.Close() // a few tries per connection, not a guessing machine
			}
			return nil, errors.New("that is not the code the classroom printed")
		}
		if c.studentOf(cl) != nil {
			return nil, errors.New("this page is a student's: open /teacher in another tab")
		}
		if err := cl.AddToGroup(teachersGroup); err != nil {
			return nil, err
		}
		return c.teacherState(), nil
	})

	s.On("teacher_remove", func(cl *wszero.Client, p struct{ ID int }) error {
		for _, st := range c.students {
			if st.id != p.ID {
				continue
			}
			if st.here() {
				return fmt.Errorf("%s is here: only students who are away can be removed", st.name)
			}
			c.remove(st)
			c.updateTeachers()
			return nil
		}
		return errors.New("that student is not in the class any more")
	})

	s.On("teacher_split", func(cl *wszero.Client, p struct{ Groups int }) error {
		if p.Groups < 0 || p.Groups > 10 {
			return errors.New("choose from 0 to 10 groups")
		}
		for _, st := range c.students {
			if st.client != nil && st.group > 0 {
				st.client.RemoveFromGroup(groupName(st.group))
			}
			st.group = 0
		}
		c.groups = p.Groups
		keys := slices.Clone(c.order)
		rand.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
		for i, key := range keys {
			st := c.students[key]
			if p.Groups > 0 {
				st.group = i%p.Groups + 1
			}
			if st.client != nil {
				if st.group > 0 {
					_ = st.client.AddToGroup(groupName(st.group))
				}
				_ = st.client.Send("state", c.studentState(st))
			}
		}
		c.updateTeachers()
		return nil
	})

	s.On("teacher_ask", func(cl *wszero.Client, p struct {
		Text    string
		Choices []string `json:"choices,omitempty"`
		Correct string   `json:"correct,omitempty"`
		Group   int      `json:"group,omitempty"`
	}) error {
		text := strings.TrimSpace(p.Text)
		if text == "" || utf8.RuneCountInString(text) > 500 {
			return errors.New("type a question of 1 to 500 letters")
		}
		choices := []string{} // never null for the pages
		for _, ch := range p.Choices {
			if ch = strings.TrimSpace(ch); ch != "" && !slices.Contains(choices, ch) {
				choices = append(choices, ch)
			}
		}
		if len(choices) == 1 || len(choices) > 8 {
			return errors.New("give 2 to 8 answers to choose from, or none for a free-text question")
		}
		correct := strings.TrimSpace(p.Correct)
		if len(choices) > 0 && correct != "" && !slices.Contains(choices, correct) {
			return errors.New("the right answer must be one of the answers to choose from")
		}
		if p.Group < 0 || p.Group > c.groups {
			return errors.New("there is no such group: make the groups first")
		}
		id := 1
		if c.question != nil {
			id = c.question.ID + 1
		}
		c.question = &question{ID: id, Text: text, Choices: choices, Group: p.Group, correct: correct, answers: map[string]string{}}
		c.sendStudentsState()
		c.updateTeachers()
		return nil
	})

	s.On("teacher_reveal", func(cl *wszero.Client) error {
		if c.question == nil {
			return errors.New("ask a question first")
		}
		c.question.revealed = true
		c.sendStudentsState()
		c.updateTeachers()
		return nil
	})

	s.On("teacher_lock", func(cl *wszero.Client, p struct{ Locked bool }) error {
		c.locked = p.Locked
		c.updateTeachers()
		return c.s.BroadcastTo(studentsGroup, "lock", wszero.Params{"locked": c.locked})
	})
}

// studentNamed returns the student called name, ignoring case, or nil.
func (c *classroom) studentNamed(name string) *student {
	for _, st := range c.students {
		if strings.EqualFold(st.name, name) {
			return st
		}
	}
	return nil
}

// rekey gives st the key of the page it came back on, with its answers.
func (c *classroom) rekey(st *student, key string) {
	old := st.key
	delete(c.students, old)
	st.key = key
	c.students[key] = st
	c.order[slices.Index(c.order, old)] = key
	if q := c.question; q != nil {
		if a, ok := q.answers[old]; ok {
			delete(q.answers, old)
			q.answers[key] = a
		}
	}
}

// remove takes st out of the class.
func (c *classroom) remove(st *student) {
	delete(c.students, st.key)
	c.order = slices.DeleteFunc(c.order, func(k string) bool { return k == st.key })
	if q := c.question; q != nil {
		delete(q.answers, st.key)
	}
}

// studentOf returns the student whose page cl is, or nil.
func (c *classroom) studentOf(cl *wszero.Client) *student {
	key, _ := cl.Get("key").(string)
	if st := c.students[key]; st != nil && st.client == cl {
		return st
	}
	return nil
}

// asks reports whether q is for st.
func (c *classroom) asks(q *question, st *student) bool {
	return q.Group == 0 || q.Group == st.group
}

// studentState is everything a student's page shows.
func (c *classroom) studentState(st *student) wszero.Params {
	p := wszero.Params{"name": st.name, "group": st.group, "locked": c.locked, "question": nil}
	if q := c.question; q != nil && c.asks(q, st) {
		qp := wszero.Params{"id": q.ID, "text": q.Text, "choices": q.Choices, "revealed": q.revealed, "yours": q.answers[st.key]}
		if q.revealed {
			qp["correct"] = q.correct
		}
		p["question"] = qp
	}
	return p
}

// sendStudentsState sends each student's page its state.
func (c *classroom) sendStudentsState() {
	for _, st := range c.students {
		if st.client != nil {
			_ = st.client.Send("state", c.studentState(st))
		}
	}
}

// teacherState is everything the teacher's page shows.
func (c *classroom) teacherState() wszero.Params {
	type row struct {
		ID       int    `json:"id"`
		Name     string `json:"name"`
		Group    int    `json:"group"`
		Online   bool   `json:"online"`
		Answered bool   `json:"answered"`
	}
	type bar struct {
		Label   string `json:"label"`
		Count   int    `json:"count"`
		Correct bool   `json:"correct"`
	}
	q := c.question
	rows := []row{} // an empty list, not null, for the page
	for _, key := range c.order {
		st := c.students[key]
		answered := false
		if q != nil {
			_, answered = q.answers[key]
		}
		rows = append(rows, row{st.id, st.name, st.group, st.here(), answered})
	}
	p := wszero.Params{"students": rows, "groups": c.groups, "locked": c.locked, "question": nil}
	if q != nil {
		bars := []bar{}           // a free-text question with no answer yet has none: an empty list, not null
		index := map[string]int{} // a bar by its label, in lower case: counting is linear in the answers
		for _, ch := range q.Choices {
			index[strings.ToLower(ch)] = len(bars)
			bars = append(bars, bar{Label: ch, Correct: ch == q.correct})
		}
		asked := 0
		for _, key := range c.order {
			if st := c.students[key]; c.asks(q, st) {
				asked++
			}
			a, ok := q.answers[key]
			if !ok {
				continue
			}
			i, seen := index[strings.ToLower(a)]
			if !seen {
				bars = append(bars, bar{Label: a, Correct: strings.EqualFold(a, q.correct)})
				i = len(bars) - 1
				index[strings.ToLower(a)] = i
			}
			bars[i].Count++
		}
		if len(q.Choices) == 0 {
			slices.SortStableFunc(bars, func(a, b bar) int { return b.Count - a.Count })
		}
		p["question"] = wszero.Params{"id": q.ID, "text": q.Text, "choices": q.Choices, "group": q.Group,
			"correct": q.correct, "revealed": q.revealed, "bars": bars, "answered": len(q.answers), "asked": asked}
	}
	return p
}

// updateTeachers sends the teachers' pages the classroom's state.
func (c *classroom) updateTeachers() {
	if c.updatePending {
		return // one update is on its way, and will show this change too
	}
	if len(c.s.Members(teachersGroup)) == 0 {
		return // no teacher is looking: the state is built when one logs in
	}
	c.updatePending = true
	// However fast students join and answer, the teachers' pages get at
	// most one update every teacherUpdateEvery, and each costs one state.
	c.s.After(teacherUpdateEvery, func() {
		c.updatePending = false
		_ = c.s.BroadcastTo(teachersGroup, "state", c.teacherState())
	})
}

// teacherUpdateEvery is how often at most the teachers' pages are updated.
const teacherUpdateEvery = 100 * time.Millisecond

// maxStudents is how many students a class takes: a script cannot make the
// class, and the teacher's page, as large as it likes.
const maxStudents = 200
