package service_test

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/carenotify/carenotify/pkg/bus/bustest"
	"github.com/carenotify/carenotify/pkg/grpcx"
	smsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/sms/v1"
	"github.com/carenotify/carenotify/services/sms/internal/config"
	"github.com/carenotify/carenotify/services/sms/internal/service"
)

func listen(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func TestRunServesHealthMetricsAndUnimplementedSend(t *testing.T) {
	ns := bustest.Start(t)
	cfg := &config.Config{
		HTTPListener: listen(t), GRPCListener: listen(t), NATSURL: ns.ClientURL(),
		LogLevel: slog.LevelInfo, ShutdownGrace: time.Second,
	}
	cfg.HTTPAddr, cfg.GRPCAddr = cfg.HTTPListener.Addr().String(), cfg.GRPCListener.Addr().String()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- service.Run(ctx, cfg, slog.New(slog.DiscardHandler)) }()

	cc, err := grpcx.NewClient(cfg.GRPCAddr, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	callCtx, callCancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer callCancel()
	hc, err := healthpb.NewHealthClient(cc).Check(callCtx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
	if err != nil || hc.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health = %v, %v", hc, err)
	}
	_, err = smsv1.NewSmsServiceClient(cc).Send(callCtx, &smsv1.SendRequest{Tenant: "demo"})
	if status.Code(err) != codes.Unimplemented {
		t.Errorf("Send() = %v, want Unimplemented until the SMS channel is built", err)
	}
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		resp, err := http.Get("http://" + cfg.HTTPAddr + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s = %d", path, resp.StatusCode)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run() = %v after cancel", err)
	}
}
