package service_test

import (
	"net"
	"strings"
	"testing"

	deliveryv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/delivery/v1"
	"github.com/carenotify/carenotify/services/email/internal/dnstest"
	"github.com/carenotify/carenotify/services/email/internal/smtptest"
)

// TestDirectMXDelivery: with EMAIL_DELIVERY=mx a PHI message goes to the
// recipient domain's MX host found through EMAIL_DNS_SERVER, over
// verified STARTTLS, and the record names the MX host.
func TestDirectMXDelivery(t *testing.T) {
	ca := smtptest.NewCA(t, "mx.patients.test")
	dns := dnstest.Start(t, dnstest.Zone{
		MX: map[string][]dnstest.MX{"patients.test": {{Pref: 10, Host: "mx.patients.test"}}},
		A:  map[string][]net.IP{"mx.patients.test": {net.ParseIP("127.0.0.1")}},
	})
	h := setup(t, smtptest.Options{CA: ca}, "EMAIL_DELIVERY=mx", "EMAIL_DNS_SERVER="+dns.Addr)
	h.cfg.MXPort = h.relay.Port
	h.run(t)
	req := validRequest("acme", "mx-1")
	req.To = "zz.canary@patients.test"
	got := h.waitStatus(t, "acme", h.send(t, req).GetMessageId(), deliveryv1.Status_STATUS_SENT)
	if tr := got.GetTransport(); tr.GetNextHop() != "mx.patients.test" || !tr.GetTlsVerified() {
		t.Errorf("transport = %v, want verified TLS to mx.patients.test", tr)
	}
	if msgs := h.relay.Messages(); len(msgs) != 1 || msgs[0].To[0] != req.To {
		t.Errorf("MX host got %d messages, want the one", len(msgs))
	}
	if dns.Queries("MX patients.test") == 0 {
		t.Error("no MX lookup reached EMAIL_DNS_SERVER")
	}
	if strings.Contains(h.logs.String(), "canary") {
		t.Error("logs hold the recipient")
	}
}
