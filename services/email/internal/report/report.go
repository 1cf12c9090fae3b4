package report

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
)

// Kind is what a report says about the message.
type Kind string

// Kinds of report.
const (
	// HardBounce: the message was not delivered and will not be (Action
	// failed, Status 5.x.x).
	HardBounce Kind = "dsn_5xx"
	// OtherDSN: a delivery status notification that is not a hard bounce
	// (delayed, delivered, relayed, a 4.x.x failure).
	OtherDSN Kind = "dsn_other"
	// Complaint: an ARF feedback report (abuse, fraud, virus, other, ...).
	Complaint Kind = "complaint"
	// NotReport: anything else (an auto-reply, a human answer).
	NotReport Kind = "not_report"
)

// Report is the outcome of reading one message.
type Report struct {
	Kind Kind
	// Status is the RFC 3463 status of the first failed recipient of a
	// hard bounce ("5.1.1"), or "".
	Status string
	// FeedbackType is the ARF Feedback-Type of a complaint, lower case
	// ("abuse"), or "".
	FeedbackType string
	// MessageID is the report's own Message-ID, angle brackets included,
	// or "" when it has none or it is not a plain msg-id (at most 250
	// printable ASCII characters, no spaces).
	MessageID string
}

// maxPart bounds how much of the machine-readable part is read.
const maxPart = 64 << 10

// Parse reads a message and says what kind of report it is. A message that
// is not multipart/report is NotReport, without error; errors mean a
// malformed report. Errors never quote the message.
func Parse(r io.Reader) (Report, error) {
	e, err := message.Read(r)
	if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
		return Report{}, errors.New("report: unreadable message header")
	}
	rep, err := parse(e)
	rep.MessageID = messageID(e.Header.Get("Message-Id"))
	return rep, err
}

// messageID returns v when it is a plain msg-id, "" otherwise.
func messageID(v string) string {
	v = strings.TrimSpace(v)
	if len(v) < 3 || len(v) > 250 || v[0] != '<' || v[len(v)-1] != '>' {
		return ""
	}
	for i := 0; i < len(v); i++ {
		if v[i] <= ' ' || v[i] >= 0x7f {
			return ""
		}
	}
	return v
}

func parse(e *message.Entity) (Report, error) {
	mt, params, err := e.Header.ContentType()
	if err != nil || mt != "multipart/report" {
		return Report{Kind: NotReport}, nil
	}
	var want []string
	switch strings.ToLower(params["report-type"]) {
	case "delivery-status":
		want = []string{"message/delivery-status", "message/global-delivery-status"}
	case "feedback-report":
		want = []string{"message/feedback-report"}
	default:
		return Report{Kind: NotReport}, nil
	}
	mr := e.MultipartReader()
	if mr == nil {
		return Report{}, errors.New("report: multipart/report without parts")
	}
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return Report{}, fmt.Errorf("report: no %s part", want[0])
		}
		if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
			return Report{}, errors.New("report: malformed multipart body")
		}
		pt, _, _ := p.Header.ContentType()
		if !contains(want, pt) {
			continue
		}
		body, err := io.ReadAll(io.LimitReader(p.Body, maxPart))
		if err != nil {
			return Report{}, errors.New("report: unreadable report part")
		}
		groups, err := fieldGroups(body)
		if err != nil {
			return Report{}, err
		}
		if pt == "message/feedback-report" {
			return feedback(groups)
		}
		return deliveryStatus(groups)
	}
}

// fieldGroups reads blocks of header fields separated by blank lines, the
// shape of message/delivery-status and message/feedback-report bodies.
func fieldGroups(body []byte) ([]textproto.Header, error) {
	// Make sure the last group ends with a blank line.
	body = append(bytes.TrimRight(body, "\r\n"), "\r\n\r\n"...)
	br := bufio.NewReader(bytes.NewReader(body))
	var groups []textproto.Header
	for {
		// Skip blank lines between groups.
		for {
			b, err := br.Peek(1)
			if err != nil {
				return groups, nil
			}
			if b[0] != '\r' && b[0] != '\n' {
				break
			}
			_, _ = br.ReadByte()
		}
		h, err := textproto.ReadHeader(br)
		if err != nil {
			return nil, errors.New("report: malformed report fields")
		}
		groups = append(groups, h)
		if len(groups) > 1000 {
			return nil, errors.New("report: too many recipient groups")
		}
	}
}

// deliveryStatus reads RFC 3464 §2.2 (per-message fields, first group)
// and §2.3 (per-recipient fields, the other groups).
func deliveryStatus(groups []textproto.Header) (Report, error) {
	if len(groups) < 2 {
		return Report{}, errors.New("report: delivery status without recipient fields")
	}
	for _, g := range groups[1:] {
		action := strings.ToLower(strings.TrimSpace(g.Get("Action")))
		status := statusCode(g.Get("Status"))
		if action == "failed" && strings.HasPrefix(status, "5.") {
			return Report{Kind: HardBounce, Status: status}, nil
		}
	}
	return Report{Kind: OtherDSN}, nil
}

// feedback reads RFC 5965 §3.1 fields.
func feedback(groups []textproto.Header) (Report, error) {
	if len(groups) == 0 {
		return Report{}, errors.New("report: empty feedback report")
	}
	ft := strings.ToLower(strings.TrimSpace(groups[0].Get("Feedback-Type")))
	if ft == "" {
		return Report{}, errors.New("report: feedback report without Feedback-Type")
	}
	if ft == "not-spam" {
		return Report{Kind: NotReport, FeedbackType: ft}, nil
	}
	// Only a token: the value is the reporter's, keep it bounded.
	if len(ft) > 32 || strings.Trim(ft, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
		ft = "other"
	}
	return Report{Kind: Complaint, FeedbackType: ft}, nil
}

// statusCode returns the RFC 3463 code at the start of a Status field
// ("5.1.1 (user unknown)" gives "5.1.1"), or "" when there is none.
func statusCode(v string) string {
	code, _, _ := strings.Cut(strings.TrimSpace(v), " ")
	parts := strings.Split(code, ".")
	if len(parts) != 3 || (parts[0] != "2" && parts[0] != "4" && parts[0] != "5") {
		return ""
	}
	for _, p := range parts[1:] {
		if p == "" || len(p) > 3 || strings.Trim(p, "0123456789") != "" {
			return ""
		}
	}
	return code
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
