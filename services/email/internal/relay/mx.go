package relay

import (
	"context"
	"errors"
	"net"
	"strings"
	"time"

	"github.com/carenotify/carenotify/services/email/internal/app"
)

// mxCacheTTL is how long a domain's MX hosts are kept (the test server's
// TTLs are not exposed by net.Resolver).
const mxCacheTTL = time.Minute

type mxEntry struct {
	hosts []string
	at    time.Time
}

// recipientDomain returns the lower-case domain of o's recipient.
func recipientDomain(o app.Outgoing) string {
	_, d, _ := strings.Cut(o.Message.To, "@")
	return strings.ToLower(d)
}

// mxHosts returns domain's MX hosts, most preferred first (RFC 5321 §5.1):
// the domain itself when it has no MX record, a permanent error for a
// null MX (RFC 7505), a temporary one when DNS fails. Errors never name
// the domain (it is part of the recipient's address).
func (r *Relay) mxHosts(ctx context.Context, domain string) ([]string, error) {
	r.mu.Lock()
	e, ok := r.mx[domain]
	r.mu.Unlock()
	if ok && time.Since(e.at) < mxCacheTTL {
		return e.hosts, nil
	}
	mxs, err := r.o.Resolver.LookupMX(ctx, domain)
	var dnsErr *net.DNSError
	var hosts []string
	switch {
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		hosts = []string{domain}
	case err != nil && len(mxs) == 0:
		return nil, &app.DeliveryError{Reason: app.ReasonConnect, Detail: "MX lookup failed"}
	default:
		for _, mx := range mxs {
			h := strings.ToLower(strings.TrimSuffix(mx.Host, "."))
			if h == "" {
				if len(mxs) == 1 {
					return nil, &app.DeliveryError{Permanent: true, Reason: app.ReasonSMTP5xx, Stage: "MX", Code: 556,
						EnhancedCode: "5.1.10", Detail: "the recipient domain accepts no mail (null MX)"}
				}
				continue
			}
			hosts = append(hosts, h)
		}
		if len(hosts) == 0 {
			hosts = []string{domain}
		}
	}
	r.mu.Lock()
	r.mx[domain] = mxEntry{hosts: hosts, at: time.Now()}
	r.mu.Unlock()
	return hosts, nil
}

// route returns the hops o may go to and the TLS level it needs on them:
// the relay; or, for direct delivery, the recipient domain's MX hosts,
// narrowed to those its enforced MTA-STS policy names and with verified
// TLS required (RFC 8461 §5). Under a testing policy nothing changes but
// what OnSTS is told.
func (r *Relay) route(ctx context.Context, o app.Outgoing) ([]hop, app.TLSLevel, *STSPolicy, error) {
	if !r.o.Direct {
		return []hop{{host: r.o.Host, port: r.o.Port}}, o.TLS, nil, nil
	}
	domain := recipientDomain(o)
	hosts, err := r.mxHosts(ctx, domain)
	if err != nil {
		return nil, 0, nil, err
	}
	var pol *STSPolicy
	if r.o.STS != nil {
		pol = r.o.STS.Policy(ctx, domain)
	}
	level := o.TLS
	var hops []hop
	for _, h := range hosts {
		if pol != nil && !pol.Matches(h) {
			r.stsReport(pol.Mode, "mx_mismatch")
			if pol.Mode == STSEnforce {
				continue
			}
		}
		hops = append(hops, hop{host: h, port: r.o.MXPort})
	}
	if pol != nil && pol.Mode == STSEnforce {
		level = app.TLSVerified
		if len(hops) == 0 {
			return nil, 0, pol, &app.DeliveryError{Reason: app.ReasonMTASTS, Detail: "no MX host matches the enforced MTA-STS policy"}
		}
	}
	return hops, level, pol, nil
}

func (r *Relay) stsReport(mode, result string) {
	if r.o.OnSTS != nil {
		r.o.OnSTS(mode, result)
	}
}
