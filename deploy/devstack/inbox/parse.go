package inbox

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // decode non-UTF-8 charsets
	"github.com/emersion/go-message/mail"
)

// parse decodes the header fields, subject and first text/plain and text/html
// parts of a raw RFC 5322 message. On error it returns what it decoded before
// the error: a sink keeps malformed messages too, since showing them is the
// point.
func parse(raw []byte) (Message, error) {
	var m Message
	r, err := mail.CreateReader(bytes.NewReader(raw))
	if r == nil {
		return m, fmt.Errorf("read header: %w", err)
	}
	defer r.Close()
	m.Headers = headerMap(r.Header.Header)
	m.Subject, err = r.Header.Subject()
	if err != nil {
		m.Subject = r.Header.Get("Subject")
	}

	for m.Text == "" || m.HTML == "" {
		p, err := r.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil && !message.IsUnknownCharset(err) {
			return m, fmt.Errorf("read part: %w", err)
		}
		h, ok := p.Header.(*mail.InlineHeader)
		if !ok {
			continue // attachment
		}
		t, _, _ := h.ContentType()
		var dst *string
		switch {
		case t == "text/plain" && m.Text == "":
			dst = &m.Text
		case t == "text/html" && m.HTML == "":
			dst = &m.HTML
		default:
			continue
		}
		body, err := io.ReadAll(p.Body)
		if err != nil {
			return m, fmt.Errorf("read %s part: %w", t, err)
		}
		*dst = strings.ReplaceAll(string(body), "\r\n", "\n")
	}
	return m, nil
}

// headerMap returns the fields of h, with encoded words decoded where they
// decode.
func headerMap(h message.Header) map[string][]string {
	m := make(map[string][]string, h.Len())
	fields := h.Fields()
	for fields.Next() {
		v, err := fields.Text()
		if err != nil {
			v = fields.Value()
		}
		m[fields.Key()] = append(m[fields.Key()], v)
	}
	return m
}
