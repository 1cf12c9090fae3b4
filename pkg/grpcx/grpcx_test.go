package grpcx

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// panicHealth is a health server whose Check panics, to test recovery.
type panicHealth struct {
	healthpb.UnimplementedHealthServer
}

func (panicHealth) Check(context.Context, *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	panic("patient secret in panic value")
}

// serve starts s on a loopback port and returns a client connection to it.
func serve(t *testing.T, s *grpc.Server, reg prometheus.Registerer) *grpc.ClientConn {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(l) }()
	t.Cleanup(s.Stop)
	cc, err := NewClient(l.Addr().String(), reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

func TestHealthAndMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, _ := NewServer(slog.New(slog.DiscardHandler), reg)
	cc := serve(t, s, reg)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health Check = %v, %v; want SERVING", resp, err)
	}
	const method = "/grpc.health.v1.Health/Check"
	got := map[string]float64{
		"server": testutil.ToFloat64(newServerMetricsFrom(t, reg, "grpc_server_handled_total", method)),
		"client": testutil.ToFloat64(newServerMetricsFrom(t, reg, "grpc_client_handled_total", method)),
	}
	if diff := cmp.Diff(map[string]float64{"server": 1, "client": 1}, got); diff != "" {
		t.Errorf("handled counters (-want +got):\n%s", diff)
	}
}

func TestRecovery(t *testing.T) {
	var logs strings.Builder
	reg := prometheus.NewRegistry()
	s := newBareServer(slog.New(slog.NewJSONHandler(&logs, nil)), reg)
	healthpb.RegisterHealthServer(s, panicHealth{})
	cc := serve(t, s, reg)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
	if status.Code(err) != codes.Internal {
		t.Fatalf("Check after panic = %v, want Internal", err)
	}
	if strings.Contains(logs.String(), "patient secret") || strings.Contains(err.Error(), "patient secret") {
		t.Error("panic value leaked into logs or error")
	}
	if !strings.Contains(logs.String(), "panic in grpc handler") {
		t.Errorf("panic not logged: %s", logs.String())
	}
}

// newServerMetricsFrom returns the counter child of name for method with code OK.
func newServerMetricsFrom(t *testing.T, reg *prometheus.Registry, name, method string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "value"})
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, lp := range m.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			if labels["method"] == method && labels["code"] == "OK" {
				c.Add(m.GetCounter().GetValue())
			}
		}
	}
	return c
}
