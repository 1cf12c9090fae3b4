// Package dnstest runs a small authoritative DNS server on loopback UDP
// for tests: A, MX and TXT records from a table, NXDOMAIN for names it
// does not hold, and a Resolver that asks only it. Written on
// golang.org/x/net/dns/dnsmessage (RFC 1035 wire format).
package dnstest

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// MX is one MX record.
type MX struct {
	Pref uint16
	Host string
}

// Zone holds the records, by lower-case name without the trailing dot.
type Zone struct {
	A   map[string][]net.IP
	MX  map[string][]MX
	TXT map[string][]string
}

// Server is a running DNS server.
type Server struct {
	// Addr is its UDP address (host:port).
	Addr string

	mu   sync.Mutex
	zone Zone
	// Queries counts the questions asked, by "<type> <name>".
	queries map[string]int
}

// Start serves zone until the test ends.
func Start(t testing.TB, zone Zone) *Server {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Addr: pc.LocalAddr().String(), zone: zone, queries: map[string]int{}}
	t.Cleanup(func() { _ = pc.Close() })
	go s.serve(pc)
	return s
}

// SetTXT replaces the TXT records of name.
func (s *Server) SetTXT(name string, txt ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.zone.TXT == nil {
		s.zone.TXT = map[string][]string{}
	}
	s.zone.TXT[name] = txt
}

// Queries returns how often "<TYPE> <name>" (e.g. "TXT _mta-sts.example.test") was asked.
func (s *Server) Queries(q string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queries[q]
}

// Resolver returns a resolver that asks only s.
func (s *Server) Resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", s.Addr)
	}}
}

func (s *Server) serve(pc net.PacketConn) {
	buf := make([]byte, 1500)
	for {
		n, addr, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		if resp, ok := s.answer(buf[:n]); ok {
			_, _ = pc.WriteTo(resp, addr)
		}
	}
}

func (s *Server) answer(req []byte) ([]byte, bool) {
	var p dnsmessage.Parser
	h, err := p.Start(req)
	if err != nil {
		return nil, false
	}
	q, err := p.Question()
	if err != nil {
		return nil, false
	}
	name := strings.ToLower(strings.TrimSuffix(q.Name.String(), "."))
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queries[strings.TrimPrefix(q.Type.String(), "Type")+" "+name]++
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RCode: dnsmessage.RCodeSuccess})
	_, knownA := s.zone.A[name]
	_, knownMX := s.zone.MX[name]
	_, knownTXT := s.zone.TXT[name]
	if !knownA && !knownMX && !knownTXT {
		b = dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RCode: dnsmessage.RCodeNameError})
	}
	b.EnableCompression()
	_ = b.StartQuestions()
	_ = b.Question(q)
	_ = b.StartAnswers()
	rh := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60}
	switch q.Type {
	case dnsmessage.TypeA:
		for _, ip := range s.zone.A[name] {
			var a [4]byte
			copy(a[:], ip.To4())
			_ = b.AResource(rh, dnsmessage.AResource{A: a})
		}
	case dnsmessage.TypeMX:
		for _, mx := range s.zone.MX[name] {
			_ = b.MXResource(rh, dnsmessage.MXResource{Pref: mx.Pref, MX: dnsmessage.MustNewName(strings.TrimSuffix(mx.Host, ".") + ".")})
		}
	case dnsmessage.TypeTXT:
		for _, txt := range s.zone.TXT[name] {
			_ = b.TXTResource(rh, dnsmessage.TXTResource{TXT: []string{txt}})
		}
	}
	resp, err := b.Finish()
	return resp, err == nil
}
