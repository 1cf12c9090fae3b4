package app_test

import (
	"errors"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/carenotify/carenotify/pkg/bus"
	deliveryv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/delivery/v1"
)

// lastEvent returns the last DeliveryEvent on delivery.<tenant>.email.<status>.
func lastEvent(t *testing.T, js jetstream.JetStream, tenant, status string) (*deliveryv1.DeliveryEvent, bool) {
	t.Helper()
	stream, err := js.Stream(t.Context(), bus.StreamDelivery)
	if err != nil {
		t.Fatalf("delivery stream: %v", err)
	}
	raw, err := stream.GetLastMsgForSubject(t.Context(), "delivery."+tenant+".email."+status)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, false
	}
	if err != nil {
		t.Fatalf("read delivery event: %v", err)
	}
	var ev deliveryv1.DeliveryEvent
	if err := proto.Unmarshal(raw.Data, &ev); err != nil {
		t.Fatal(err)
	}
	return &ev, true
}
