package inbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"time"
)

// Kinds of message.
const (
	// KindEmail is a message received over SMTP.
	KindEmail = "email"
	// KindSMS is a text message the Twilio stand-in accepted (or replied
	// with to an inbound message).
	KindSMS = "sms"
)

// defaultLimit is how many messages an Inbox keeps; older ones are dropped.
const defaultLimit = 1000

// Message is one message received by the inbox.
//
// Messages returned by an Inbox share their slices and maps with it: treat
// them as read-only.
type Message struct {
	// ID identifies the message within the inbox (16 hex digits).
	ID string `json:"id"`
	// Kind is the channel the message came through: KindEmail or KindSMS.
	Kind string `json:"kind"`
	// ReceivedAt is when the inbox stored the message, in UTC.
	ReceivedAt time.Time `json:"receivedAt"`
	// From is the envelope sender (SMTP MAIL FROM); the From header is in
	// Headers.
	From string `json:"from"`
	// To are the envelope recipients (SMTP RCPT TO), the addresses the
	// message was actually delivered to, Bcc included.
	To []string `json:"to"`
	// Subject is the decoded Subject header.
	Subject string `json:"subject"`
	// Text is the first text/plain part, decoded to UTF-8, with LF line
	// endings.
	Text string `json:"text"`
	// HTML is the first text/html part, decoded to UTF-8, with LF line
	// endings.
	HTML string `json:"html"`
	// Headers are the top-level header fields, keys in canonical form
	// ("Message-Id"), values with encoded words decoded.
	Headers map[string][]string `json:"headers"`
	// TLS reports whether the message was sent over TLS (after STARTTLS).
	TLS bool `json:"tls"`
	// TLSVersion is the TLS version used, such as "TLS 1.3", or empty.
	TLSVersion string `json:"tlsVersion"`
	// Encryption says how the body is encrypted, as received:
	// EncryptionSMIME, EncryptionPGP, or "" (not encrypted).
	Encryption string `json:"encryption"`
	// DKIM is the result of checking the message's first DKIM signature
	// (DKIMPass, DKIMFail, DKIMNone, DKIMTempError, DKIMPermError) against
	// the keys given to SetDKIMKeys; DKIMDomain is its d= domain.
	DKIM       string `json:"dkim"`
	DKIMDomain string `json:"dkimDomain"`
	// Delivery is the sender's own account of how it sent the message
	// (RecordDelivery), nil until it arrives.
	Delivery *Delivery `json:"delivery"`
	// Size is the size of the message as received, in bytes.
	Size int `json:"size"`
	// Raw is the message as received, after the SMTP DATA dot-unstuffing.
	Raw []byte `json:"-"`
}

type entry struct {
	seq uint64 // position in arrival order, from 1
	msg Message
}

// Inbox holds the most recent received messages in memory. It is safe for
// concurrent use. The zero value is not usable; call New.
type Inbox struct {
	limit int

	mu       sync.Mutex
	entries  []entry // oldest first
	seq      uint64  // seq of the last message added
	changed  chan struct{}
	dkimKeys map[string]string   // DKIM TXT records by name
	pending  map[string]Delivery // delivery reports before their message, by carenotify id
}

// New returns an empty Inbox that keeps the last 1000 messages.
func New() *Inbox {
	return &Inbox{limit: defaultLimit, changed: make(chan struct{})}
}

// Messages returns the messages held, newest first.
func (in *Inbox) Messages() []Message {
	in.mu.Lock()
	defer in.mu.Unlock()
	msgs := make([]Message, 0, len(in.entries))
	for i := len(in.entries) - 1; i >= 0; i-- {
		msgs = append(msgs, in.entries[i].msg)
	}
	return msgs
}

// Message returns the message with the given id, if the inbox still holds it.
func (in *Inbox) Message(id string) (Message, bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, e := range in.entries {
		if e.msg.ID == id {
			return e.msg, true
		}
	}
	return Message{}, false
}

// Reset removes every message.
func (in *Inbox) Reset() {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.entries = nil
}

// Wait returns the newest message held for which match returns true, or
// blocks until such a message arrives or ctx is done. A nil match matches any
// message. match is called without the inbox locked, so it may call the
// inbox.
func (in *Inbox) Wait(ctx context.Context, match func(Message) bool) (Message, error) {
	var seen uint64 // messages up to seen have been offered to match
	for {
		in.mu.Lock()
		var fresh []Message // newest first
		for i := len(in.entries) - 1; i >= 0 && in.entries[i].seq > seen; i-- {
			fresh = append(fresh, in.entries[i].msg)
		}
		seen = in.seq
		changed := in.changed
		in.mu.Unlock()

		for _, m := range fresh {
			if match == nil || match(m) {
				return m, nil
			}
		}
		select {
		case <-ctx.Done():
			return Message{}, fmt.Errorf("wait for message: %w", ctx.Err())
		case <-changed:
		}
	}
}

// add stores m, dropping the oldest message if the inbox is full, and wakes
// every Wait.
func (in *Inbox) add(m Message) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if id := carenotifyID(m); id != "" && m.Kind == KindEmail {
		if d, ok := in.pending[id]; ok {
			m.Delivery = &d
			delete(in.pending, id)
		}
	}
	in.seq++
	in.entries = append(in.entries, entry{seq: in.seq, msg: m})
	if extra := len(in.entries) - in.limit; extra > 0 {
		n := copy(in.entries, in.entries[extra:])
		clear(in.entries[n:]) // let the dropped messages be collected
		in.entries = in.entries[:n]
	}
	in.notify()
}

// notify wakes every Wait; in.mu is held.
func (in *Inbox) notify() {
	close(in.changed)
	in.changed = make(chan struct{})
}

// keys returns the DKIM keys.
func (in *Inbox) keys() map[string]string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.dkimKeys
}

// AddSMS stores a text message from sender to recipient (E.164 numbers
// or a messaging service SID) as a KindSMS message: the body is its Text
// and, shortened to 60 characters, its Subject, so the index lists it.
func (in *Inbox) AddSMS(from, to, body string) {
	subject := body
	if r := []rune(subject); len(r) > 60 {
		subject = string(r[:59]) + "…"
	}
	in.add(Message{
		ID: newID(), Kind: KindSMS, ReceivedAt: time.Now().UTC(), From: from, To: []string{to},
		Subject: subject, Text: body, Headers: map[string][]string{}, TLS: false, Size: len(body), Raw: []byte(body),
	})
}

// newID returns a random message id.
func newID() string {
	var b [8]byte
	rand.Read(b[:]) // never returns an error
	return hex.EncodeToString(b[:])
}
