// Command loadgen sends one HTTP request over and over from -c concurrent clients, each on its
// own keep-alive connection, for -duration (and never more than -max-requests), after -warmup
// unmeasured requests; it prints one JSON object: requests, errors, req/s and latency percentiles
// (each request timed to the last byte of its body).
//
// Every answer must be 200 and contain -expect (when given); anything else counts as an error and
// the first one is reported.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type headerList []string

func (h *headerList) String() string     { return strings.Join(*h, ", ") }
func (h *headerList) Set(v string) error { *h = append(*h, v); return nil }

type config struct {
	url         string
	body        []byte
	headers     http.Header
	concurrency int
	duration    time.Duration
	maxRequests int64
	warmup      int
	timeout     time.Duration
	expect      []byte
}

type result struct {
	Requests   int64   `json:"requests"`
	Errors     int64   `json:"errors"`
	FirstError string  `json:"first_error,omitempty"`
	Seconds    float64 `json:"seconds"`
	RPS        float64 `json:"rps"`
	P50Ms      float64 `json:"p50_ms"`
	P90Ms      float64 `json:"p90_ms"`
	P99Ms      float64 `json:"p99_ms"`
	MaxMs      float64 `json:"max_ms"`
	MeanBytes  float64 `json:"mean_bytes"`
}

type worker struct {
	cfg       *config
	client    *http.Client
	buf       bytes.Buffer
	latencies []time.Duration
	bytes     int64
	errors    int64
	firstErr  string
}

func (w *worker) once() (time.Duration, error) {
	req, err := http.NewRequest(http.MethodPost, w.cfg.url, bytes.NewReader(w.cfg.body))
	if err != nil {
		return 0, err
	}
	req.Header = w.cfg.headers.Clone()
	start := time.Now()
	resp, err := w.client.Do(req)
	if err != nil {
		return 0, err
	}
	w.buf.Reset()
	_, err = w.buf.ReadFrom(resp.Body)
	resp.Body.Close()
	elapsed := time.Since(start)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("status %d: %.300s", resp.StatusCode, w.buf.String())
	}
	if len(w.cfg.expect) > 0 && !bytes.Contains(w.buf.Bytes(), w.cfg.expect) {
		return 0, fmt.Errorf("answer without %q: %.300s", w.cfg.expect, w.buf.String())
	}
	w.bytes += int64(w.buf.Len())
	return elapsed, nil
}

func (w *worker) record(elapsed time.Duration, err error) {
	if err != nil {
		w.errors++
		if w.firstErr == "" {
			w.firstErr = err.Error()
		}
		return
	}
	w.latencies = append(w.latencies, elapsed)
}

func newClient(cfg *config) *http.Client {
	transport := &http.Transport{
		MaxIdleConns:        cfg.concurrency * 2,
		MaxIdleConnsPerHost: cfg.concurrency * 2,
		MaxConnsPerHost:     cfg.concurrency,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	return &http.Client{Transport: transport, Timeout: cfg.timeout}
}

func run(cfg *config) result {
	client := newClient(cfg)
	workers := make([]*worker, cfg.concurrency)
	for i := range workers {
		workers[i] = &worker{cfg: cfg, client: client}
	}
	// Warm-up: open every connection and let the servers settle; not measured.
	var wg sync.WaitGroup
	for i, w := range workers {
		n := cfg.warmup / cfg.concurrency
		if i < cfg.warmup%cfg.concurrency {
			n++
		}
		wg.Add(1)
		go func(w *worker, n int) {
			defer wg.Done()
			for j := 0; j < n; j++ {
				_, _ = w.once()
			}
		}(w, n)
	}
	wg.Wait()
	for _, w := range workers {
		w.bytes = 0
	}
	var issued atomic.Int64
	start := time.Now()
	deadline := start.Add(cfg.duration)
	for _, w := range workers {
		wg.Add(1)
		go func(w *worker) {
			defer wg.Done()
			for time.Now().Before(deadline) && issued.Add(1) <= cfg.maxRequests {
				w.record(w.once())
			}
		}(w)
	}
	wg.Wait()
	return summarise(workers, time.Since(start))
}

func percentile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	index := int(p*float64(len(sorted))+0.999999) - 1 // nearest rank
	index = max(0, min(index, len(sorted)-1))
	return float64(sorted[index].Microseconds()) / 1000
}

func summarise(workers []*worker, elapsed time.Duration) result {
	var all []time.Duration
	var res result
	var totalBytes int64
	for _, w := range workers {
		all = append(all, w.latencies...)
		res.Errors += w.errors
		totalBytes += w.bytes
		if res.FirstError == "" {
			res.FirstError = w.firstErr
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	res.Requests = int64(len(all))
	res.Seconds = elapsed.Seconds()
	res.RPS = float64(res.Requests) / res.Seconds
	res.P50Ms, res.P90Ms, res.P99Ms = percentile(all, 0.50), percentile(all, 0.90), percentile(all, 0.99)
	res.MaxMs = percentile(all, 1)
	if res.Requests > 0 {
		res.MeanBytes = float64(totalBytes) / float64(res.Requests)
	}
	return res
}

func parse() (*config, error) {
	var headers headerList
	cfg := &config{headers: http.Header{}}
	bodyFile := flag.String("body-file", "", "file holding the request body (JSON)")
	expect := flag.String("expect", "", "a string every answer's body must contain")
	flag.StringVar(&cfg.url, "url", "", "URL to POST to")
	flag.Var(&headers, "header", "a request header 'Name: value' (repeatable)")
	flag.IntVar(&cfg.concurrency, "c", 1, "concurrent clients (one connection each)")
	flag.DurationVar(&cfg.duration, "duration", 2*time.Second, "how long to measure")
	flag.Int64Var(&cfg.maxRequests, "max-requests", 1_000_000, "bound on measured requests")
	flag.IntVar(&cfg.warmup, "warmup", 0, "unmeasured requests before measuring")
	flag.DurationVar(&cfg.timeout, "timeout", 10*time.Second, "timeout of one request")
	flag.Parse()
	if cfg.url == "" || *bodyFile == "" || cfg.concurrency < 1 {
		return nil, fmt.Errorf("-url, -body-file and -c >= 1 are required")
	}
	body, err := os.ReadFile(*bodyFile)
	if err != nil {
		return nil, err
	}
	cfg.body, cfg.expect = body, []byte(*expect)
	cfg.headers.Set("Content-Type", "application/json")
	for _, h := range headers {
		name, value, ok := strings.Cut(h, ":")
		if !ok {
			return nil, fmt.Errorf("header %q is not 'Name: value'", h)
		}
		cfg.headers.Set(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	return cfg, nil
}

func main() {
	cfg, err := parse()
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(2)
	}
	if err := json.NewEncoder(os.Stdout).Encode(run(cfg)); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}
