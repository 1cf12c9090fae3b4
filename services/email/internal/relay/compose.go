package relay

import (
	"bytes"

	"github.com/wneessen/go-mail"

	"github.com/carenotify/carenotify/services/email/internal/app"
)

// compose builds the MIME message: From, To, Subject, Date, Message-ID
// <id@from-domain>, X-Carenotify-Message-Id, Auto-Submitted,
// List-Unsubscribe and List-Unsubscribe-Post when o asks for them and
// Unsubscribe gives a URL, and the bodies (multipart/alternative when both
// are given); encrypts it for o.Key when set; then signs it when a Signer
// is set. The result has CRLF line endings.
func (r *Relay) compose(o app.Outgoing) ([]byte, encryption, error) {
	m := o.Message
	msg := mail.NewMsg(mail.WithNoDefaultUserAgent())
	msg.FromMailAddress(r.o.From)
	if err := msg.To(m.To); err != nil {
		// Send validated the address; the error would quote it.
		return nil, encryption{}, &app.DeliveryError{Permanent: true, Reason: app.ReasonRecipient}
	}
	msg.Subject(m.Subject)
	msg.SetDate()
	msg.SetMessageIDWithValue(m.ID + "@" + r.fromDomain)
	msg.SetGenHeader(mail.Header(HeaderMessageID), m.ID)
	msg.SetGenHeader(mail.Header("Auto-Submitted"), "auto-generated")
	if o.Unsubscribe && r.o.Unsubscribe != nil {
		if u := r.o.Unsubscribe(m); u != "" {
			msg.SetGenHeader(mail.Header(HeaderListUnsubscribe), "<"+u+">")
			msg.SetGenHeader(mail.Header(HeaderListUnsubscribePost), "List-Unsubscribe=One-Click")
		}
	}
	switch {
	case m.TextBody != "" && m.HTMLBody != "":
		msg.SetBodyString(mail.TypeTextPlain, m.TextBody)
		msg.AddAlternativeString(mail.TypeTextHTML, m.HTMLBody)
	case m.HTMLBody != "":
		msg.SetBodyString(mail.TypeTextHTML, m.HTMLBody)
	default:
		msg.SetBodyString(mail.TypeTextPlain, m.TextBody)
	}
	var buf bytes.Buffer
	if _, err := msg.WriteTo(&buf); err != nil {
		return nil, encryption{}, &app.DeliveryError{Permanent: true, Reason: app.ReasonSession, Detail: "compose message"}
	}
	data := buf.Bytes()
	var enc encryption
	if o.Key != nil {
		var err error
		if data, enc, err = encrypt(data, *o.Key, o.Subject); err != nil {
			return nil, encryption{}, err
		}
	}
	if r.o.Signer == nil {
		return data, enc, nil
	}
	signed, err := r.o.Signer.Sign(data)
	if err != nil {
		// Temporary: a key problem is for the operator to fix.
		return nil, encryption{}, &app.DeliveryError{Reason: app.ReasonSession, Detail: "dkim: " + err.Error()}
	}
	return signed, enc, nil
}
