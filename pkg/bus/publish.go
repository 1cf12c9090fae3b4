package bus

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Publish stores data on subject with the given Nats-Msg-Id and headers and
// returns once JetStream has acknowledged it. PubAck.Duplicate is true when
// the stream already held a message with msgID inside its window.
func Publish(ctx context.Context, js jetstream.JetStream, subject string, data []byte, msgID string, hdr nats.Header) (*jetstream.PubAck, error) {
	if msgID == "" {
		return nil, fmt.Errorf("publish %s: empty message id", subject)
	}
	msg := &nats.Msg{Subject: subject, Data: data, Header: hdr}
	ack, err := js.PublishMsg(ctx, msg, jetstream.WithMsgID(msgID))
	if err != nil {
		return nil, fmt.Errorf("publish %s: %w", subject, err)
	}
	return ack, nil
}
