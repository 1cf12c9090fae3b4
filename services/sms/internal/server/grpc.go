// Package server is the sms service's transport layer.
package server

import (
	smsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/sms/v1"
)

// SMS serves carenotify.sms.v1.SmsService. The SMS channel is not built yet
// (see the README's status table): every method answers UNIMPLEMENTED, so
// callers learn that at once instead of a message being silently dropped.
type SMS struct {
	smsv1.UnimplementedSmsServiceServer
}

var _ smsv1.SmsServiceServer = (*SMS)(nil)
