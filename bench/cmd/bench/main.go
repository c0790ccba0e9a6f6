// Command bench runs the benchmark servers side by side and prints one
// table per scenario, with the median of interleaved runs and ratios
// against the peers measured in the same run. Each server is pinned to
// CPU 0 and the load generator (this program, run again with -gen) to
// CPU 1, over 127.0.0.1. Every message is checked for loss, order and
// corruption; a run that fails a check is reported and fails the command.
//
// The servers are the Go ones in ./cmd/server and socketio, Socket.IO 4
// under Node (./socketio/server.mjs), which the generator speaks to in
// Engine.IO. Its packages are installed with npm ci when they are missing;
// without node or npm it is left out, with a line that says so.
//
//	cd bench && go run ./cmd/bench            # everything, about 6 minutes
//	go run ./cmd/bench -scenarios echo -reps 1
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/wszero/wszero/bench/loadgen"
	"github.com/wszero/wszero/bench/socketio"
)

var (
	genMode   = flag.Bool("gen", false, "run as the load generator (used by bench itself)")
	scenario  = flag.String("scenario", "", "-gen: fanout, rate, echo or idle")
	addr      = flag.String("addr", "", "-gen: the server's address")
	conns     = flag.Int("n", 1000, "-gen: connections")
	dur       = flag.Duration("dur", 3*time.Second, "how long each measured run lasts")
	rate      = flag.Int("rate", 40000, "deliveries a second in the fixed-rate fan-out")
	window    = flag.Int("window", 16, "broadcasts in flight in the closed-loop fan-out")
	reps      = flag.Int("reps", 3, "interleaved runs of each server per scenario")
	impls     = flag.String("impls", "naive,prepared,melody,wszero,socketio", "servers to compare")
	scenarios = flag.String("scenarios", "fanout,rate,echo,idle,curve", "scenarios to run")
	serverCPU = flag.String("server-cpu", "0", "CPU the servers are pinned to")
	genCPU    = flag.String("gen-cpu", "1", "CPU the load generator is pinned to")
	before    = flag.String("before", "", "a server binary built from an earlier wszero, compared as wszero-before (for measuring a change)")
	dialect   = flag.String("dialect", "plain", "-gen: plain; socketio for the Socket.IO peer; session for wszero with resumption")
)

// socketIODir is the Socket.IO peer's folder, from bench/.
const socketIODir = "socketio"

func main() {
	flag.Parse()
	if *genMode {
		if err := generate(); err != nil {
			fmt.Fprintln(os.Stderr, "gen:", err)
			os.Exit(1)
		}
		return
	}
	if err := compare(); err != nil {
		log.Fatal(err)
	}
}

// generate dials the connections, says READY, waits for a line on stdin,
// runs the scenario and prints RESULT and its JSON.
func generate() error {
	d, err := loadgen.ParseDialect(*dialect)
	if err != nil {
		return err
	}
	l, err := loadgen.NewLoop()
	if err != nil {
		return err
	}
	dialed := time.Now()
	cs := make([]*loadgen.Conn, *conns)
	var wg sync.WaitGroup
	var firstErr error
	var mu sync.Mutex
	next := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				c, err := l.Dial(*addr, i, d)
				if err != nil {
					mu.Lock()
					firstErr = fmt.Errorf("dial %d: %w", i, err)
					mu.Unlock()
					continue
				}
				cs[i] = c
			}
		}()
	}
	for i := range cs {
		next <- i
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	// The loop runs from the scenario's start: until then what the sockets
	// receive waits in them.
	fmt.Println("READY")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		return err
	}
	// Socket.IO closes a connection whose pings go unanswered for
	// MaxSilence, and pings are answered only while the loop runs.
	if limit := maxSilence(cs); limit > 0 && time.Since(dialed) >= limit {
		return fmt.Errorf("the connections waited %v unread, and the server closes them after %v without an answer to its pings: it may have closed some",
			time.Since(dialed).Round(time.Millisecond), limit)
	}
	var res loadgen.Result
	cpu0 := ownCPU()
	switch *scenario {
	case "fanout":
		res = loadgen.FanoutClosed(l, cs, *dur, *window)
	case "rate":
		res = loadgen.FanoutRate(l, cs, *dur, *rate)
	case "echo":
		res = loadgen.Echo(l, cs, *dur)
	case "idle":
	default:
		return fmt.Errorf("unknown scenario %q", *scenario)
	}
	if res.Seconds > 0 {
		res.GenBusy = (ownCPU() - cpu0) / res.Seconds
	}
	b, _ := json.Marshal(res)
	fmt.Printf("RESULT %s\n", b)
	return nil
}

// maxSilence is the shortest time the server lets one of cs go unread; 0
// means no limit.
func maxSilence(cs []*loadgen.Conn) time.Duration {
	var limit time.Duration
	for _, c := range cs {
		if m := c.MaxSilence(); m > 0 && (limit == 0 || m < limit) {
			limit = m
		}
	}
	return limit
}

// ownCPU is this process's CPU time so far, in seconds.
func ownCPU() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// run is one measured run of one server.
type run struct {
	res        loadgen.Result
	cpuSeconds float64 // the server's CPU time while the scenario ran
	rssKB      float64 // idle: the server's RSS growth per connection, in KB
}

// measure starts server impl, the generator against it, and returns what
// they measured.
func measure(serverBin, impl, scen string, n int) (run, error) {
	var r run
	ctx, cancel := context.WithTimeout(context.Background(), *dur+90*time.Second)
	defer cancel()
	server, speaks := []string{serverBin, "-impl", impl}, loadgen.Plain
	switch impl {
	case "wszero":
		speaks = loadgen.Session // as its browser and Go clients do: resumption on
	case "wszero-before":
		server[0], server[2] = *before, "wszero"
	case "socketio":
		// Node, like Go, raises its soft limit on open files to the hard
		// limit, as the idle scenario's 10,000 connections need.
		server, speaks = []string{"node", filepath.Join(socketIODir, "server.mjs")}, loadgen.SocketIO
	}
	srv := exec.CommandContext(ctx, "taskset", append([]string{"-c", *serverCPU}, server...)...)
	srv.Stderr = os.Stderr
	out, err := srv.StdoutPipe()
	if err != nil {
		return r, err
	}
	if err := srv.Start(); err != nil {
		return r, err
	}
	defer func() {
		_ = srv.Process.Kill() // by its PID: taskset has become the server
		_ = srv.Wait()
	}()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "LISTEN ") {
		return r, fmt.Errorf("%s did not start: %q %v", impl, line, err)
	}
	address := strings.TrimSpace(strings.TrimPrefix(line, "LISTEN "))
	pid := srv.Process.Pid
	time.Sleep(200 * time.Millisecond)
	rss0 := rssKB(pid)

	self, err := os.Executable()
	if err != nil {
		return r, err
	}
	gen := exec.CommandContext(ctx, "taskset", "-c", *genCPU, self, "-gen", "-scenario", scen, "-addr", address, "-dialect", speaks.String(),
		"-n", strconv.Itoa(n), "-dur", dur.String(), "-rate", strconv.Itoa(*rate), "-window", strconv.Itoa(*window))
	gen.Stderr = os.Stderr
	stdin, err := gen.StdinPipe()
	if err != nil {
		return r, err
	}
	gout, err := gen.StdoutPipe()
	if err != nil {
		return r, err
	}
	if err := gen.Start(); err != nil {
		return r, err
	}
	defer func() {
		_ = gen.Process.Kill()
		_ = gen.Wait()
	}()
	rd := bufio.NewReader(gout)
	if line, err := rd.ReadString('\n'); err != nil || line != "READY\n" {
		return r, fmt.Errorf("generator against %s: %q %v", impl, line, err)
	}
	if scen == "idle" {
		time.Sleep(2 * time.Second) // let the server settle
		r.rssKB = (rssKB(pid) - rss0) / float64(n)
	}
	cpu0 := cpuSeconds(pid)
	if _, err := io.WriteString(stdin, "GO\n"); err != nil {
		return r, err
	}
	line, err = rd.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "RESULT ") {
		return r, fmt.Errorf("generator against %s: %q %v", impl, line, err)
	}
	r.cpuSeconds = cpuSeconds(pid) - cpu0
	if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "RESULT ")), &r.res); err != nil {
		return r, err
	}
	return r, r.res.Check()
}

// rssKB reads a process's resident set size.
func rssKB(pid int) float64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			v, _ := strconv.ParseFloat(f[1], 64)
			return v
		}
	}
	return 0
}

// cpuSeconds reads a process's user and system CPU time.
func cpuSeconds(pid int) float64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	k, _ := strconv.ParseFloat(f[12], 64)
	return (u + k) / 100 // USER_HZ
}

// curveImpls are the servers the curve compares: the fast ones.
func curveImpls(order []string) []string {
	var out []string
	for _, impl := range order {
		if impl != "naive" && impl != "melody" && impl != "socketio" {
			out = append(out, impl)
		}
	}
	return out
}

// table is one scenario's figure for each server.
type table struct {
	title, unit string
	higher      bool // higher is better
	values      map[string][]float64
}

func (t *table) print(order []string) {
	fmt.Printf("\n### %s\n\n", t.title)
	fmt.Printf("| server | %s (median) | runs | vs naive | vs prepared |\n|---|---|---|---|---|\n", t.unit)
	med := map[string]float64{}
	for _, impl := range order {
		v := slices.Clone(t.values[impl])
		if len(v) == 0 {
			continue
		}
		slices.Sort(v)
		med[impl] = v[len(v)/2]
	}
	for _, impl := range order {
		m, ok := med[impl]
		if !ok {
			continue
		}
		runs := make([]string, len(t.values[impl]))
		for i, v := range t.values[impl] {
			runs[i] = format(v)
		}
		fmt.Printf("| %s | %s | %s | %s | %s |\n", impl, format(m), strings.Join(runs, " "), ratio(m, med["naive"]), ratio(m, med["prepared"]))
	}
}

func format(v float64) string {
	switch {
	case v >= 1000:
		return strconv.FormatFloat(v/1000, 'f', 1, 64) + "k"
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

func ratio(v, base float64) string {
	if base == 0 {
		return "–"
	}
	return strconv.FormatFloat(v/base, 'f', 2, 64) + "×"
}

func compare() error {
	tmp, err := os.MkdirTemp("", "wszero-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	serverBin := filepath.Join(tmp, "server")
	build := exec.Command("go", "build", "-o", serverBin, "./cmd/server")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("building the servers (run from bench/): %w", err)
	}
	order := strings.Split(*impls, ",")
	if *before != "" {
		order = append(order, "wszero-before")
	}
	load, _ := os.ReadFile("/proc/loadavg")
	host, _ := os.Hostname()
	fmt.Printf("# wszero bench, %s, host %s, load %s", time.Now().UTC().Format(time.RFC3339), host, load)
	fmt.Printf("# %s; servers on CPU %s, generator on CPU %s; %d interleaved runs of %v; median shown\n",
		strings.Join(os.Args, " "), *serverCPU, *genCPU, *reps, *dur)
	if slices.Contains(order, "socketio") {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		err := socketio.Install(ctx, socketIODir, os.Stderr)
		cancel()
		if err != nil {
			fmt.Printf("# socketio is left out of this run: %v\n", err)
			order = slices.DeleteFunc(order, func(impl string) bool { return impl == "socketio" })
		}
	}
	failed := false
	each := func(t *table, impls []string, scen string, n int, value func(impl string, r run) float64) {
		t.values = map[string][]float64{}
		for rep := 0; rep < *reps; rep++ {
			for _, impl := range impls {
				r, err := measure(serverBin, impl, scen, n)
				if err != nil {
					failed = true
					fmt.Fprintf(os.Stderr, "%s %s n=%d: %v\n", scen, impl, n, err)
					if errors.Is(err, context.DeadlineExceeded) || r.res.Seconds == 0 {
						continue
					}
				}
				if r.res.Seconds > 0 {
					warn := ""
					if r.res.GenBusy > 0.9 {
						warn = ": it may be the bottleneck"
					}
					fmt.Fprintf(os.Stderr, "%s %s n=%d: the generator was busy %.0f%% of the time%s\n", scen, impl, n, 100*r.res.GenBusy, warn)
				}
				t.values[impl] = append(t.values[impl], value(impl, r))
			}
		}
		t.print(impls)
	}
	for _, scen := range strings.Split(*scenarios, ",") {
		switch scen {
		case "fanout":
			each(&table{title: "Fan-out, 1,000 subscribers, closed loop", unit: "deliveries/s", higher: true}, order, "fanout", 1000,
				func(_ string, r run) float64 { return float64(r.res.Deliveries) / r.res.Seconds })
		case "rate":
			p50 := &table{title: "…the same runs: p50 latency", unit: "p50 ms", values: map[string][]float64{}}
			t := &table{title: fmt.Sprintf("Fan-out, 1,000 subscribers, %d deliveries/s: p99 latency", *rate), unit: "p99 ms"}
			each(t, order, "rate", 1000, func(impl string, r run) float64 {
				fmt.Fprintf(os.Stderr, "rate %s: p50 %.2f p90 %.2f p99 %.2f max %.2f ms, %d deliveries\n", impl, r.res.P50, r.res.P90, r.res.P99, r.res.Max, r.res.Deliveries)
				p50.values[impl] = append(p50.values[impl], r.res.P50)
				return r.res.P99
			})
			p50.print(order)
		case "echo":
			// The generator does as many system calls per round trip as a
			// server: the server's CPU per round trip shows its own cost
			// apart from how fast the generator can go.
			cpu := &table{title: "…the same runs: server CPU per round trip", unit: "µs CPU/round trip", values: map[string][]float64{}}
			each(&table{title: "Echo, 100 clients in request/reply loops", unit: "round trips/s", higher: true}, order, "echo", 100,
				func(impl string, r run) float64 {
					cpu.values[impl] = append(cpu.values[impl], r.cpuSeconds*1e6/float64(max(r.res.Deliveries, 1)))
					return float64(r.res.Deliveries) / r.res.Seconds
				})
			cpu.print(order)
		case "idle":
			each(&table{title: "10,000 idle connections", unit: "KB RSS per connection"}, order, "idle", 10000,
				func(_ string, r run) float64 { return r.rssKB })
		case "curve":
			for _, n := range []int{100, 1000, 10000} {
				each(&table{title: fmt.Sprintf("Curve: fan-out closed loop, %d subscribers: server CPU per delivery", n), unit: "ns CPU/delivery"},
					curveImpls(order), "fanout", n,
					func(_ string, r run) float64 { return r.cpuSeconds * 1e9 / float64(max(r.res.Deliveries, 1)) })
			}
		default:
			return fmt.Errorf("unknown scenario %q", scen)
		}
	}
	if failed {
		return errors.New("some runs failed their checks (above)")
	}
	return nil
}
