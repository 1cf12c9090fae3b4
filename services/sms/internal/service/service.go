// Package service wires the sms service together: NATS, the gRPC API and the
// operational HTTP endpoints, run until the context is cancelled.
package service

import (
	"context"
	"log/slog"

	"github.com/carenotify/carenotify/pkg/bus"
	"github.com/carenotify/carenotify/pkg/grpcx"
	"github.com/carenotify/carenotify/pkg/lifecycle"
	"github.com/carenotify/carenotify/pkg/telemetry"
	smsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/sms/v1"
	"github.com/carenotify/carenotify/services/sms/internal/config"
	"github.com/carenotify/carenotify/services/sms/internal/server"
)

// Run runs the service until ctx is cancelled.
func Run(ctx context.Context, cfg *config.Config, logger *slog.Logger) error {
	tel := telemetry.New("sms")
	nc, _, err := bus.Connect(ctx, cfg.NATSURL, "sms", logger)
	if err != nil {
		return err
	}
	defer nc.Close()
	tel.AddReadiness("nats", bus.Ready(nc))

	gs, _ := grpcx.NewServer(logger, tel.Registry)
	smsv1.RegisterSmsServiceServer(gs, &server.SMS{})

	httpL, err := lifecycle.Listen(cfg.HTTPListener, cfg.HTTPAddr)
	if err != nil {
		return err
	}
	grpcL, err := lifecycle.Listen(cfg.GRPCListener, cfg.GRPCAddr)
	if err != nil {
		return err
	}
	g := lifecycle.NewGroup(logger, cfg.ShutdownGrace)
	g.HTTP("http", httpL, tel.Handler())
	g.GRPC("grpc", grpcL, gs)
	logger.Info("sms started", "http", httpL.Addr().String(), "grpc", grpcL.Addr().String())
	return g.Run(ctx)
}
