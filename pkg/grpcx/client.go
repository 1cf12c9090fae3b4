package grpcx

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// retryServiceConfig retries UNAVAILABLE, which channel services return
// only when nothing was stored, so a retry with the same idempotency key is
// always safe.
const retryServiceConfig = `{
  "methodConfig": [{
    "name": [{}],
    "retryPolicy": {
      "maxAttempts": 4,
      "initialBackoff": "0.1s",
      "maxBackoff": "2s",
      "backoffMultiplier": 2,
      "retryableStatusCodes": ["UNAVAILABLE"]
    }
  }]
}`

// NewClient returns a client connection to target (host:port) with client
// metrics registered on reg and retries of UNAVAILABLE. Callers set a
// deadline on every call.
func NewClient(target string, reg prometheus.Registerer, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	m := newClientMetrics(reg)
	opts = append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithChainUnaryInterceptor(m.unary),
		grpc.WithDefaultServiceConfig(retryServiceConfig),
	}, opts...)
	cc, err := grpc.NewClient(target, opts...)
	if err != nil {
		return nil, fmt.Errorf("grpc client %s: %w", target, err)
	}
	return cc, nil
}

type clientMetrics struct {
	handled  *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newClientMetrics(reg prometheus.Registerer) *clientMetrics {
	m := &clientMetrics{
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpc_client_handled_total",
			Help: "gRPC calls completed by this client, by method and status code.",
		}, []string{"method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "grpc_client_handling_seconds",
			Help:    "Time gRPC calls took as seen by this client, by method.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"method"}),
	}
	if err := reg.Register(m.handled); err != nil {
		if are, ok := err.(prometheus.AlreadyRegisteredError); ok {
			m.handled = are.ExistingCollector.(*prometheus.CounterVec)
		}
	}
	if err := reg.Register(m.duration); err != nil {
		if are, ok := err.(prometheus.AlreadyRegisteredError); ok {
			m.duration = are.ExistingCollector.(*prometheus.HistogramVec)
		}
	}
	return m
}

func (m *clientMetrics) unary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	start := time.Now()
	err := invoker(ctx, method, req, reply, cc, opts...)
	m.duration.WithLabelValues(method).Observe(time.Since(start).Seconds())
	m.handled.WithLabelValues(method, status.Code(err).String()).Inc()
	return err
}
