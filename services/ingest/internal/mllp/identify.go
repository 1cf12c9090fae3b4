package mllp

import (
	"context"
	"crypto/tls"
	"net"

	"github.com/carenotify/carenotify/services/ingest/internal/app"
)

// identify completes the TLS handshake of conn (bounded by the read
// timeout) and returns the source its verified client certificate names.
// It logs why a connection is refused, never the certificate's names
// (they may name a person's device).
func (s *Server) identify(ctx context.Context, conn net.Conn) (app.Source, bool) {
	remote := conn.RemoteAddr().String()
	tc, ok := conn.(*tls.Conn)
	if !ok {
		s.o.Logger.ErrorContext(ctx, "mllp source by certificate needs TLS", "remote", remote)
		return app.Source{}, false
	}
	hctx, cancel := context.WithTimeout(ctx, s.o.ReadTimeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		// Wrong CA, no certificate, expired: the handshake fails.
		s.o.Logger.WarnContext(ctx, "mllp tls handshake failed", "remote", remote, "reason", "mtls_handshake")
		s.o.Metrics.refused("mtls_handshake")
		return app.Source{}, false
	}
	st := tc.ConnectionState()
	if len(st.VerifiedChains) == 0 || len(st.PeerCertificates) == 0 {
		s.o.Logger.WarnContext(ctx, "mllp connection without a verified client certificate", "remote", remote, "reason", "mtls_no_certificate")
		s.o.Metrics.refused("mtls_no_certificate")
		return app.Source{}, false
	}
	src, ok := s.o.Identify(st.PeerCertificates[0])
	if !ok {
		s.o.Logger.WarnContext(ctx, "mllp client certificate names no source", "remote", remote, "reason", "mtls_wrong_identity")
		s.o.Metrics.refused("mtls_wrong_identity")
		return app.Source{}, false
	}
	return src, true
}

// forSource returns a server for one connection of src: the same options
// with src as the source.
func (s *Server) forSource(src app.Source) *Server {
	o := s.o
	o.Source = src
	return &Server{o: o}
}
