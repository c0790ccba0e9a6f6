// Classroom is a complete app for a class, built on wszero's public API:
// students open the address it prints and type their name; the teacher
// opens /teacher with the code it prints, sees who is there, splits the
// class into groups, asks questions, watches the answers arrive as a bar
// chart, reveals the answer, and can lock the students' screens.
//
//	go run ./classroom
//
// Every teacher op is refused, by a guard, to a client that has not given
// the code. It is served by wszero's Server.Run, with its own mux
// (RunHandler) and its own words for the addresses (RunBanner).
package main

import (
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"fmt"
	"io/fs"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"

	"github.com/wszero/wszero"
)

//go:embed static
var files embed.FS

func main() {
	// A chosen code counts however it is typed: in capitals, without spaces.
	code, chosen := strings.ToUpper(strings.Join(strings.Fields(os.Getenv("CLASSROOM_CODE")), "")), true
	if code == "" {
		code, chosen = newCode(), false
	}
	c := newClassroom(code, os.Stdout)
	err := c.s.Run(8000, wszero.RunHandler(c.handler()), wszero.RunBanner(func(a wszero.RunAddresses) string {
		return banner(a, code, chosen)
	}))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// banner says where the students and the teacher open the classroom. A
// code the teacher chose (CLASSROOM_CODE) is not printed, so that a
// terminal shown on the projector does not give it away.
func banner(a wszero.RunAddresses, code string, chosen bool) string {
	var b strings.Builder
	b.WriteString("The classroom is open.\n\n")
	switch len(a.Network) {
	case 0:
		b.WriteString("This computer is on no network that other computers can reach: only it can open the classroom.\n")
	case 1:
		fmt.Fprintf(&b, "Students open this address (write it on the board):\n    %s\n", a.Network[0])
	default:
		fmt.Fprintf(&b, "Students open this address (write it on the board):\n    %s\n", a.Network[0])
		b.WriteString("If it does not open on their phones or laptops, try the next one instead:\n")
		for _, u := range a.Network[1:] {
			fmt.Fprintf(&b, "    %s\n", u)
		}
	}
	fmt.Fprintf(&b, "On this computer: %s\n\n", a.Local)
	if chosen {
		fmt.Fprintf(&b, "Teacher: open %s/teacher and type your code (the one in CLASSROOM_CODE).\n\n", a.Local)
	} else {
		fmt.Fprintf(&b, "Teacher: open this address, and keep it to yourself:\n    %s/teacher?code=%s\n", a.Local, code)
		fmt.Fprintf(&b, "or open /teacher on any computer of the class and type the code %s\n", code)
		b.WriteString("(Showing this terminal on a projector? Set CLASSROOM_CODE to a code of your own, and it is not printed.)\n\n")
	}
	b.WriteString("Stopping the classroom (Ctrl-C) ends the round: the students, their answers and the groups are forgotten.\n")
	return b.String()
}

// codeLetters leave out the letters and digits that look alike (0 and O,
// 1 and I and L).
const codeLetters = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"

// codeLength is how many letters and digits the teacher's code has: 31
// to the 8th is about 8.5 × 10¹¹ codes (40 bits), which the guessing limits
// (guessing.go) put out of reach of a script for the length of a lesson.
const codeLength = 8

// newCode returns a random code for the teacher, each letter drawn
// uniformly from codeLetters.
func newCode() string {
	b := make([]byte, codeLength)
	for i := range b {
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(codeLetters))))
		if err != nil {
			log.Fatal(err)
		}
		b[i] = codeLetters[n.Int64()]
	}
	return string(b)
}

// codeMatches compares a typed code with the teacher's, ignoring case and
// spaces, in constant time.
func codeMatches(typed, code string) bool {
	typed = strings.ToUpper(strings.Join(strings.Fields(typed), ""))
	return subtle.ConstantTimeCompare([]byte(typed), []byte(code)) == 1
}

// requestAddr is the address a request came from, counted as wszero
// counts a client's (Client.Addr): an IPv6 address by its /64 network.
func requestAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip = ip.Unmap(); ip.Is6() {
			p, _ := ip.Prefix(64)
			return p.String()
		}
		return ip.String()
	}
	return host
}

// handler serves the pages and the WebSocket endpoint. /teacher serves the
// teacher's page only with the right code in the address; without it, a
// form that asks for the code.
func (c *classroom) handler() http.Handler {
	static, _ := fs.Sub(files, "static")
	mux := http.NewServeMux()
	mux.Handle("/ws", c.s)
	mux.Handle("/wszero.js", c.s)
	mux.HandleFunc("/teacher", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Referrer-Policy", "no-referrer")
		page := "code.html"
		addr := requestAddr(r)
		switch {
		case !r.URL.Query().Has("code"):
		case !c.guesses.allowed(addr):
			http.Error(w, tooMany, http.StatusTooManyRequests)
			return
		case codeMatches(r.URL.Query().Get("code"), c.code):
			page = "teacher.html"
		default:
			c.guesses.wrongCode(addr)
			w.WriteHeader(http.StatusForbidden)
		}
		b, _ := fs.ReadFile(static, page)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(b)
	})
	files := http.FileServerFS(static)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/teacher.html" || r.URL.Path == "/code.html" {
			http.NotFound(w, r)
			return
		}
		files.ServeHTTP(w, r)
	})
	return mux
}
