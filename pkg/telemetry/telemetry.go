package telemetry

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Check reports whether one dependency is usable. Its error text is shown on
// /readyz, so it must not contain PHI.
type Check func(ctx context.Context) error

// Telemetry holds a service's metrics registry and readiness checks.
type Telemetry struct {
	// Registry is the service's own registry; register collectors here, never
	// on the global default registry.
	Registry *prometheus.Registry

	mu     sync.Mutex
	checks map[string]Check
}

// New returns a Telemetry for service with Go runtime, process and build
// info collectors registered.
func New(service string) *Telemetry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewBuildInfoCollector(),
	)
	up := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "carenotify_service_up",
		Help:        "Always 1 while the service runs; the label names the service.",
		ConstLabels: prometheus.Labels{"service": service},
	})
	up.Set(1)
	reg.MustRegister(up)
	return &Telemetry{Registry: reg, checks: map[string]Check{}}
}

// AddReadiness adds a named check that /readyz runs.
func (t *Telemetry) AddReadiness(name string, c Check) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.checks[name] = c
}

// Ready runs every readiness check and returns the failures by name.
func (t *Telemetry) Ready(ctx context.Context) map[string]string {
	t.mu.Lock()
	checks := make(map[string]Check, len(t.checks))
	for k, v := range t.checks {
		checks[k] = v
	}
	t.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var mu sync.Mutex
	var wg sync.WaitGroup
	failed := map[string]string{}
	for name, c := range checks {
		wg.Go(func() {
			if err := c(ctx); err != nil {
				mu.Lock()
				failed[name] = err.Error()
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return failed
}

// Handler serves /metrics, /healthz and /readyz.
func (t *Telemetry) Handler() http.Handler {
	mux := http.NewServeMux()
	t.Register(mux)
	return mux
}

// Register adds the operational endpoints to mux.
func (t *Telemetry) Register(mux *http.ServeMux) {
	mux.Handle("GET /metrics", promhttp.HandlerFor(t.Registry, promhttp.HandlerOpts{Registry: t.Registry}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		failed := t.Ready(r.Context())
		w.Header().Set("Content-Type", "application/json")
		if len(failed) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		names := make([]string, 0, len(failed))
		for n := range failed {
			names = append(names, n)
		}
		sort.Strings(names)
		_ = json.NewEncoder(w).Encode(struct {
			Ready  bool              `json:"ready"`
			Failed map[string]string `json:"failed,omitempty"`
		}{Ready: len(failed) == 0, Failed: failed})
	})
}
