package stack

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/carenotify/carenotify/deploy/devstack/inbox"
	"github.com/carenotify/carenotify/pkg/bus"
	deliveryv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/delivery/v1"
)

// DKIM of the development stack: the email service signs with an Ed25519
// key kept in var/keys, and the inbox checks signatures with its public
// half (no DNS is involved).
const (
	dkimSelector = "dev"
	dkimDomain   = "carenotify.localhost"
)

// ensureDKIMKey creates the development DKIM key (Ed25519, PKCS #8 PEM) at
// path on first run and returns the TXT record that would publish it at
// dev._domainkey.carenotify.localhost.
func ensureDKIMKey(path string) (record string, err error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		_, key, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return "", err
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			return "", fmt.Errorf("dev dkim key: %w", err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("dev dkim key: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return "", errors.New("dev dkim key: not PEM")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return "", fmt.Errorf("dev dkim key: %w", err)
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return "", errors.New("dev dkim key: not Ed25519")
	}
	return "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(key.Public().(ed25519.PublicKey)), nil
}

// followDeliveries reads the email service's sent events from the
// DELIVERY stream and gives the inbox each message's transport as the
// sender recorded it (TLS version, whether it verified the inbox's
// certificate, S/MIME or PGP), matched by message id.
func (s *Stack) followDeliveries() error {
	nc, err := nats.Connect(s.NATSURL, nats.Name("devstack-inbox"))
	if err != nil {
		return fmt.Errorf("inbox delivery events: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return fmt.Errorf("inbox delivery events: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, bus.StreamDelivery, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{"delivery.*.email.sent"},
	})
	if err != nil {
		nc.Close()
		return fmt.Errorf("inbox delivery events: %w", err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		var ev deliveryv1.DeliveryEvent
		if proto.Unmarshal(m.Data(), &ev) != nil {
			return
		}
		t := ev.GetTransport()
		s.Inbox.RecordDelivery(ev.GetMessageId(), inbox.Delivery{
			TLSVersion: t.GetTlsVersion(), TLSVerified: t.GetTlsVerified(), NextHop: t.GetNextHop(),
			SMIME: t.GetSmime(), PGP: t.GetPgp(), RequireTLS: t.GetRequireTls(),
		})
	})
	if err != nil {
		nc.Close()
		return fmt.Errorf("inbox delivery events: %w", err)
	}
	s.deliveries = func() { cc.Stop(); nc.Close() }
	return nil
}
