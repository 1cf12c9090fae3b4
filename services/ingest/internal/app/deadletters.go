package app

import (
	"bytes"
	"context"
	"errors"
	"time"
)

// Input paths recorded with every dead letter (header Cn-Input), so a
// replay takes the same path as the original.
const (
	// InputFHIRNotification is POST /fhir/{source}/notifications.
	InputFHIRNotification = "fhir-notification"
	// InputFHIRPush is POST /fhir/{source}[/{type}].
	InputFHIRPush = "fhir-push"
	// InputHL7 is an HL7 v2 message over MLLP.
	InputHL7 = "hl7v2"
)

// ErrDeadLetterNotFound is returned for a sequence number that holds no
// dead letter.
var ErrDeadLetterNotFound = errors.New("dead letter not found")

// ErrDeadLettersOff is returned when the App has no DeadLetterStore.
var ErrDeadLettersOff = errors.New("dead letters not configured")

// DeadLetterInfo describes a stored dead letter without its body; every
// field is PHI-free.
type DeadLetterInfo struct {
	// Seq is its EHR_DEAD stream sequence number.
	Seq uint64 `json:"seq"`
	// Time is when it was stored.
	Time time.Time `json:"time"`
	// Tenant and Source name the sender.
	Tenant string `json:"tenant"`
	Source string `json:"source"`
	// Reason is the machine code it was rejected with.
	Reason string `json:"reason"`
	// Input is the input path; "" for letters stored before it was recorded.
	Input string `json:"input"`
	// PushType is a FHIR push's URL resource type, if any.
	PushType string `json:"pushType,omitempty"`
}

// StoredDeadLetter is a dead letter read back, body opened. Body is PHI.
type StoredDeadLetter struct {
	DeadLetterInfo
	// Body is the input exactly as received. PHI.
	Body []byte
}

// DeadLetterStore reads the dead-letter stream.
type DeadLetterStore interface {
	// ListDeadLetters returns up to limit letters, oldest first, of
	// source ("" for every source).
	ListDeadLetters(ctx context.Context, source string, limit int) ([]DeadLetterInfo, error)
	// GetDeadLetter returns the letter at seq with its body opened, or an
	// error wrapping ErrDeadLetterNotFound.
	GetDeadLetter(ctx context.Context, seq uint64) (StoredDeadLetter, error)
}

// DeadLetters lists stored dead letters (no bodies).
func (a *App) DeadLetters(ctx context.Context, source string, limit int) ([]DeadLetterInfo, error) {
	if a.dead == nil {
		return nil, ErrDeadLettersOff
	}
	return a.dead.ListDeadLetters(ctx, source, limit)
}

// DeadLetter reads the letter at seq for replay. A letter stored before
// the input path was recorded gets one by sniffing: a body starting with
// MSH (or an MLLP start block) is HL7 v2, anything else a FHIR
// notification.
func (a *App) DeadLetter(ctx context.Context, seq uint64) (StoredDeadLetter, error) {
	if a.dead == nil {
		return StoredDeadLetter{}, ErrDeadLettersOff
	}
	dl, err := a.dead.GetDeadLetter(ctx, seq)
	if err != nil {
		return dl, err
	}
	if dl.Input == "" {
		dl.Input = SniffInput(dl.Body)
	}
	if dl.Input == InputHL7 {
		dl.Body = bytes.TrimPrefix(dl.Body, []byte{0x0b})
	}
	return dl, nil
}

// SniffInput guesses the input path of a body stored without one.
func SniffInput(body []byte) string {
	b := bytes.TrimLeft(body, " \t\r\n")
	if bytes.HasPrefix(b, []byte{0x0b}) || bytes.HasPrefix(b, []byte("MSH")) || bytes.HasPrefix(b, []byte("FHS")) || bytes.HasPrefix(b, []byte("BHS")) {
		return InputHL7
	}
	return InputFHIRNotification
}
