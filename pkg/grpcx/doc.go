// Package grpcx builds carenotify's gRPC servers and clients the same way
// everywhere: the standard health service, panic recovery (a panic becomes
// codes.Internal and is logged without the request), and Prometheus metrics
// per method and status code.
//
// Transport security (mTLS between services) comes with the Helm chart work;
// until then servers listen in plaintext and clients dial insecurely.
package grpcx
