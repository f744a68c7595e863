// Command cgload is the load generator of Common Grounds. It reads the users and rooms that
// `commongrounds loadtest-seed` wrote, opens one WebSocket per user against one or more
// servers, subscribes each to its rooms, publishes at a given rate and reports connections,
// acks, deliveries, end-to-end latency and every gap or duplicate in the rooms' event positions
// (new messages and changes to them: --change-mix).
//
//	cgload --seed load.json --scenario fanout --url ws://127.0.0.1:18080/ws
//
// Scenarios set defaults that flags override: idle, fanout, cross, cross-changes, evening, storm (see
// docs/benchmarks.md). With --workers W it runs W child processes of itself, each with a share
// of the users (one process holds at most as many sockets as it may open files), and merges
// their results. It exits with status 1 when the run saw a gap, a duplicate, a loss, an error
// or a failed connection.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/commongrounds/commongrounds/internal/loadgen"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "cgload: %v\n", err)
		os.Exit(1)
	}
}

// options are the command line.
type options struct {
	args         []string
	cfg          loadgen.Config
	seedPath     string
	jsonPath     string
	cpuProfile   string
	workers      int
	workerIndex  int
	settle       time.Duration
	metricsURLs  []string        // the servers' /metrics
	set          map[string]bool // flags given explicitly
	scenarioRate func(*loadgen.Seed) float64
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{args: args, workerIndex: -1}
	fs := flag.NewFlagSet("cgload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := &o.cfg
	var urls, sources, steps, metrics string
	var drop bool
	fs.StringVar(&o.seedPath, "seed", "", "seed file written by `commongrounds loadtest-seed` (required)")
	fs.StringVar(&urls, "url", "ws://127.0.0.1:8080/ws", "server WebSocket URLs, comma-separated; sockets are spread over them")
	fs.StringVar(&metrics, "metrics", "", "the servers' /metrics URLs (their METRICS_ADDR), comma-separated (default: port 9090 of each --url's host)")
	fs.StringVar(&sources, "source-addrs", "", "local addresses to connect from, comma-separated (127.0.0.2,127.0.0.3 or 127.0.0.2-9)")
	fs.StringVar(&c.Scenario, "scenario", "custom", "idle, fanout, cross, cross-changes, evening, storm or custom: sets the defaults of the other flags")
	fs.DurationVar(&c.Duration, "duration", 30*time.Second, "steady phase, after every socket is connected and subscribed")
	fs.Float64Var(&c.Rate, "rate", 0, "publishes per second, all processes together")
	fs.StringVar(&steps, "rate-steps", "", "comma-separated publish rates to run --step-duration each")
	fs.DurationVar(&c.StepDuration, "step-duration", 10*time.Second, "length of each rate step")
	fs.DurationVar(&c.P99Limit, "p99-limit", 50*time.Millisecond, "stop a stepped run after the first step whose p99 passes this (0: run every step)")
	fs.IntVar(&c.Publishers, "publishers", 0, "number of users (the first of the seed) that publish (default all)")
	fs.IntVar(&c.ContentSize, "content-size", 100, "bytes of content per message")
	fs.Float64Var(&c.ChangeMix, "change-mix", 0, "share of publishes replaced by a change to an earlier message over HTTP: an edit, a deletion or a hide, in turn (0.05: 5 %)")
	fs.Float64Var(&c.ReplyMix, "reply-mix", 0, "share of publishes sent as replies to threads of the --offline users, each notifying one (0.2: 20 %)")
	fs.IntVar(&c.Offline, "offline", 0, "users, the last of the seed, that open no socket: before the run each starts a thread in each of its rooms for --reply-mix")
	fs.StringVar(&c.PushEndpoint, "push-endpoint", "", "https URL of a push service: each --offline user stores a push subscription under it before the run")
	fs.IntVar(&c.HideFlags, "hide-flags", 3, "members that flag a message to hide it: the servers' FLAG_HIDE_THRESHOLD")
	fs.IntVar(&c.ConnectConcurrency, "connect-concurrency", 200, "dials in progress at once, per process")
	fs.DurationVar(&c.ConnectTimeout, "connect-timeout", 5*time.Minute, "longest wait for every socket to connect and subscribe")
	fs.DurationVar(&c.ReconnectJitter, "reconnect-jitter", 0, "longest random wait before a reconnect")
	fs.StringVar(&c.Storm, "storm", "", "after the steady phase: drop (close every socket) or restart (wait for the servers to restart them); then measure the catch-up")
	fs.BoolVar(&drop, "drop", false, "same as --storm drop")
	fs.DurationVar(&c.StormTimeout, "storm-timeout", 2*time.Minute, "longest wait for the storm to end, the restart included")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", 30*time.Second, "longest wait for acks and deliveries after the last publish")
	fs.DurationVar(&o.settle, "settle", 3*time.Second, "wait after every socket is ready before reading the servers' memory")
	fs.IntVar(&o.workers, "workers", 0, "child processes to spread the sockets over (0: this process)")
	fs.IntVar(&o.workerIndex, "worker-index", -1, "internal: run as child process N of --workers")
	fs.StringVar(&c.RunID, "run-id", "", "internal: the run's id, shared by its processes")
	fs.StringVar(&o.jsonPath, "json", "", "also write the result as JSON to this file")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of this process (with --workers, of each worker: FILE.N) to this file")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	o.set = make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { o.set[f.Name] = true })
	if o.seedPath == "" {
		return nil, errors.New("--seed FILE is required")
	}
	c.URLs = splitList(urls)
	var err error
	if o.metricsURLs = splitList(metrics); len(o.metricsURLs) == 0 {
		if o.metricsURLs, err = loadgen.MetricsURLs(c.URLs, "9090"); err != nil {
			return nil, err
		}
	}
	if c.SourceAddrs, err = expandAddrs(sources); err != nil {
		return nil, err
	}
	if steps != "" {
		for _, s := range splitList(steps) {
			v, err := strconv.ParseFloat(s, 64)
			if err != nil || v < 0 {
				return nil, fmt.Errorf("--rate-steps: %q is not a rate", s)
			}
			c.Steps = append(c.Steps, v)
		}
	}
	if drop {
		c.Storm = loadgen.StormDrop
		o.set["storm"] = true
	}
	if err := o.applyScenario(); err != nil {
		return nil, err
	}
	if o.workers < 0 || o.workers > 64 {
		return nil, errors.New("--workers must be from 0 to 64")
	}
	return o, nil
}

// applyScenario sets the scenario's defaults for the flags not given.
func (o *options) applyScenario() error {
	c := &o.cfg
	def := func(name string, set func()) {
		if !o.set[name] {
			set()
		}
	}
	switch c.Scenario {
	case "custom":
	case "idle":
		// (a) idle sockets: the servers' memory per socket.
		def("rate", func() { c.Rate = 0 })
		def("duration", func() { c.Duration = 30 * time.Second })
	case "fanout":
		// (b) one room: publish rate stepped up until p99 passes 50 ms.
		def("publishers", func() { c.Publishers = 20 })
		def("rate-steps", func() { c.Steps = []float64{5, 10, 15, 20, 30, 40, 50, 75, 100, 150, 200, 300, 400} })
	case "cross":
		// (c) one room split over the instances given by --url, 50 msg/s.
		def("publishers", func() { c.Publishers = 10 })
		def("rate", func() { c.Rate = 50 })
		def("duration", func() { c.Duration = 60 * time.Second })
	case "cross-changes":
		// (c) with 5 % of the publishes replaced by edits, deletions and hides.
		def("publishers", func() { c.Publishers = 10 })
		def("rate", func() { c.Rate = 50 })
		def("duration", func() { c.Duration = 60 * time.Second })
		def("change-mix", func() { c.ChangeMix = 0.05 })
	case "evening":
		// (d) many small rooms, every member posting every 10 s.
		def("rate", func() {
			o.scenarioRate = func(s *loadgen.Seed) float64 {
				n := 0
				for _, u := range s.Users {
					if len(u.Rooms) > 0 {
						n++
					}
				}
				return float64(n) / 10
			}
		})
		def("duration", func() { c.Duration = 60 * time.Second })
	case "storm":
		// (e) every socket dropped at once by a server restart, then resumed with since_seq.
		def("storm", func() { c.Storm = loadgen.StormRestart })
		def("rate", func() { c.Rate = 50 })
		def("publishers", func() { c.Publishers = 50 })
		def("duration", func() { c.Duration = 15 * time.Second })
	default:
		return fmt.Errorf("unknown scenario %q: want idle, fanout, cross, cross-changes, evening, storm or custom", c.Scenario)
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// expandAddrs expands "127.0.0.2-9" into 127.0.0.2 … 127.0.0.9; other entries stay as they are.
func expandAddrs(s string) ([]string, error) {
	var out []string
	for _, p := range splitList(s) {
		dot := strings.LastIndexByte(p, '.')
		lo, hi, ok := strings.Cut(p[dot+1:], "-")
		if dot < 0 || !ok {
			out = append(out, p)
			continue
		}
		a, err1 := strconv.Atoi(lo)
		b, err2 := strconv.Atoi(hi)
		if err1 != nil || err2 != nil || a > b || b > 255 {
			return nil, fmt.Errorf("--source-addrs: bad range %q", p)
		}
		for i := a; i <= b; i++ {
			out = append(out, p[:dot+1]+strconv.Itoa(i))
		}
	}
	return out, nil
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	seed, err := loadgen.ReadSeed(o.seedPath)
	if err != nil {
		return err
	}
	o.cfg.Seed = seed
	if o.scenarioRate != nil {
		o.cfg.Rate = o.scenarioRate(seed)
	}
	if o.cfg.RunID == "" {
		o.cfg.RunID = strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	}
	if o.cpuProfile != "" && (o.workers == 0 || o.workerIndex >= 0) {
		path := o.cpuProfile
		if o.workerIndex >= 0 {
			path += "." + strconv.Itoa(o.workerIndex)
		}
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if o.workerIndex >= 0 {
		return runChild(ctx, o, stdin, stdout)
	}
	return runParent(ctx, o, stdout, stderr)
}
