// Package server is the forms service's transport layer.
package server

import (
	formsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/forms/v1"
)

// Forms serves carenotify.forms.v1.FormsService. Secure forms and the
// secure-message portal are not built yet (see the README's status table):
// every method answers UNIMPLEMENTED, so the email channel holds PHI mail
// instead of downgrading it, and no caller mistakes a stub for a link.
type Forms struct {
	formsv1.UnimplementedFormsServiceServer
}

var _ formsv1.FormsServiceServer = (*Forms)(nil)
