// Package lifecycle runs a service's servers and workers together and stops
// them together: when the context is cancelled (SIGTERM) or any of them
// fails, every HTTP and gRPC server is shut down gracefully within the grace
// period and every worker's context is cancelled.
package lifecycle
