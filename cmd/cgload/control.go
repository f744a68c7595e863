package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"time"

	"github.com/commongrounds/commongrounds/internal/loadgen"
)

// wireLine is one line a child process writes on its stdout: an event, its result or the
// error that stopped it.
type wireLine struct {
	Event  *loadgen.Event  `json:"event,omitempty"`
	Result *loadgen.Result `json:"result,omitempty"`
	Error  string          `json:"error,omitempty"`
}

// message is what a share of the run (this process or a child) tells the controller.
type message struct {
	from   int
	event  *loadgen.Event
	result *loadgen.Result
	err    error
}

// share is one part of the run: it is told when to begin the steady phase and when to stop.
type share interface {
	begin()
	stop()
}

// localShare runs a part in this process.
type localShare struct {
	goOnce, stopOnce sync.Once
	goCh, stopCh     chan struct{}
}

func (s *localShare) begin() { s.goOnce.Do(func() { close(s.goCh) }) }
func (s *localShare) stop()  { s.stopOnce.Do(func() { close(s.stopCh) }) }

func startLocal(ctx context.Context, cfg loadgen.Config, out chan<- message) *localShare {
	s := &localShare{goCh: make(chan struct{}), stopCh: make(chan struct{})}
	go func() {
		res, err := loadgen.Run(ctx, cfg, loadgen.Control{Go: s.goCh, Stop: s.stopCh}, func(e loadgen.Event) {
			out <- message{event: &e}
		})
		out <- message{result: res, err: err}
	}()
	return s
}

// childShare runs a part in a child process of this program, which speaks JSON lines on its
// stdout; "go" on its stdin begins the steady phase, and the end of its stdin stops it.
type childShare struct {
	mu    sync.Mutex
	stdin io.WriteCloser // guarded by mu; nil once closed
}

func (c *childShare) begin() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stdin != nil {
		_, _ = io.WriteString(c.stdin, "go\n")
	}
}

func (c *childShare) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stdin != nil {
		_ = c.stdin.Close()
		c.stdin = nil
	}
}

func startChild(ctx context.Context, index int, args []string, stderr io.Writer, out chan<- message) (*childShare, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own executable: %w", err)
	}
	cmd := exec.CommandContext(ctx, exe, append(args, "--worker-index="+strconv.Itoa(index))...)
	cmd.Stderr = stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = time.Minute
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start worker %d: %w", index, err)
	}
	go func() {
		var result *loadgen.Result
		var failure error
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 256<<20)
		for sc.Scan() {
			var l wireLine
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				failure = fmt.Errorf("worker %d: bad line: %w", index, err)
				continue
			}
			switch {
			case l.Event != nil:
				out <- message{from: index, event: l.Event}
			case l.Result != nil:
				result = l.Result
			case l.Error != "":
				failure = fmt.Errorf("worker %d: %s", index, l.Error)
			}
		}
		if err := cmd.Wait(); err != nil && failure == nil && result == nil {
			failure = fmt.Errorf("worker %d: %w", index, err)
		}
		if result == nil && failure == nil {
			failure = fmt.Errorf("worker %d ended without a result", index)
		}
		out <- message{from: index, result: result, err: failure}
	}()
	return &childShare{stdin: stdin}, nil
}

// runChild runs one share of the run for a parent process.
func runChild(ctx context.Context, o *options, stdin io.Reader, stdout io.Writer) error {
	var mu sync.Mutex
	enc := json.NewEncoder(stdout)
	write := func(l wireLine) {
		mu.Lock()
		defer mu.Unlock()
		_ = enc.Encode(l)
	}
	s := &localShare{goCh: make(chan struct{}), stopCh: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stdin)
		for sc.Scan() {
			if sc.Text() == "go" {
				s.begin()
			}
		}
		s.stop()
	}()
	cfg := o.cfg
	cfg.Worker, cfg.Workers = o.workerIndex, o.workers
	res, err := loadgen.Run(ctx, cfg, loadgen.Control{Go: s.goCh, Stop: s.stopCh}, func(e loadgen.Event) {
		write(wireLine{Event: &e})
	})
	if err != nil {
		write(wireLine{Error: err.Error()})
		return err
	}
	write(wireLine{Result: res})
	return nil
}

// runParent runs the whole load test, in this process or in --workers children, and reports.
func runParent(ctx context.Context, o *options, stdout, stderr io.Writer) error {
	loadStart := loadgen.LoadAvg()
	baseline, err := loadgen.ScrapeServers(ctx, o.metricsURLs)
	if err != nil {
		fmt.Fprintf(stderr, "cgload: no baseline metrics: %v\n", err)
		baseline = &loadgen.ServerStats{}
	}
	msgs := make(chan message, 1024)
	var shares []share
	if o.workers == 0 {
		shares = append(shares, startLocal(ctx, o.cfg, msgs))
	} else {
		args := append(o.args[:len(o.args):len(o.args)], "--run-id="+o.cfg.RunID)
		for i := range o.workers {
			c, err := startChild(ctx, i, args, stderr, msgs)
			if err != nil {
				for _, s := range shares {
					s.stop()
				}
				return err
			}
			shares = append(shares, c)
		}
	}
	n := len(shares)

	merged := &loadgen.Result{Scenario: o.cfg.Scenario}
	progress := make([]*loadgen.Progress, n)
	steps := make(map[int][]*loadgen.Step)
	var failures []error
	ready, done := 0, 0
	var settle, endScrape <-chan time.Time
	restartAsked := false
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for done < n {
		select {
		case m := <-msgs:
			switch {
			case m.err != nil:
				failures = append(failures, m.err)
				done++
			case m.result != nil:
				merged.Merge(m.result)
				done++
			case m.event.Kind == "progress":
				progress[m.from] = m.event.Progress
			case m.event.Kind == "ready":
				if ready++; ready == n {
					settle = time.After(o.settle)
				}
			case m.event.Kind == "restart":
				if !restartAsked {
					restartAsked = true
					fmt.Fprintln(stderr, "cgload: steady phase over: restart the server(s) now; waiting for every socket to be dropped and to catch up")
				}
			case m.event.Kind == "step":
				i := m.event.Index
				steps[i] = append(steps[i], m.event.Step)
				if len(steps[i]) == n {
					s := &loadgen.Step{Rate: m.event.Step.Rate, Latency: loadgen.NewHist()}
					for _, part := range steps[i] {
						s.Merge(part)
					}
					l := s.Latency.Summary()
					fmt.Fprintf(stderr, "cgload: step %d: %.0f msg/s: %.0f deliveries/s, p50 %.2f ms, p99 %.2f ms, errors %d\n",
						i+1, s.Rate, float64(s.Delivered)/max(s.Seconds, 1e-9), l.P50, l.P99, s.Errors)
				}
			}
		case <-settle:
			settle = nil
			if st, err := loadgen.ScrapeServers(ctx, o.metricsURLs); err == nil {
				st.PerSocket(baseline.RSS)
				merged.Server = st
			} else {
				fmt.Fprintf(stderr, "cgload: metrics: %v\n", err)
			}
			for _, s := range shares {
				s.begin()
			}
			if len(o.cfg.Steps) == 0 && o.cfg.Duration >= 5*time.Second {
				endScrape = time.After(o.cfg.Duration - time.Second)
			}
		case <-endScrape:
			endScrape = nil
			if st, err := loadgen.ScrapeServers(ctx, o.metricsURLs); err == nil {
				st.PerSocket(baseline.RSS)
				merged.ServerEnd = st
			}
		case <-tick.C:
			var p *loadgen.Progress
			for _, x := range progress {
				if x != nil {
					p = loadgen.MergeProgress(p, x)
				}
			}
			if p != nil {
				fmt.Fprintln(stderr, loadgen.FormatProgress(p))
			}
		}
	}
	if len(failures) > 0 && merged.Sockets == 0 {
		return errors.Join(failures...)
	}

	merged.Workers = o.workers
	merged.LoadAvg = [2]string{loadStart, loadgen.LoadAvg()}
	if len(merged.Steps) > 0 && o.cfg.P99Limit > 0 {
		merged.P99LimitMs = float64(o.cfg.P99Limit) / float64(time.Millisecond)
		for _, s := range merged.Steps {
			l := s.Latency.Summary()
			if l.P99 <= merged.P99LimitMs && s.Errors == 0 && s.Seconds > 0 {
				merged.SustainedPerSec = max(merged.SustainedPerSec, float64(s.Delivered)/s.Seconds)
			}
		}
	}
	merged.WriteText(stdout)
	if o.jsonPath != "" {
		data, err := json.MarshalIndent(merged, "", "  ")
		if err != nil {
			return fmt.Errorf("encode result: %w", err)
		}
		if err := os.WriteFile(o.jsonPath, append(data, '\n'), 0o644); err != nil {
			return fmt.Errorf("write result: %w", err)
		}
	}
	if len(failures) > 0 {
		return errors.Join(failures...)
	}
	if why := merged.Failed(); len(why) > 0 {
		return fmt.Errorf("the run was not correct: %v", why)
	}
	return nil
}
