package demo

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Options say where the stack is.
type Options struct {
	IngestURL, InboxURL string
	Source, Token       string
	// Dir holds appointment-booked.json and handshake.json.
	Dir string
	// Wait bounds how long to wait for the email.
	Wait time.Duration
	Out  io.Writer
}

// Run posts the sample notifications and reports what arrived.
func Run(ctx context.Context, o Options) error {
	endpoint := strings.TrimRight(o.IngestURL, "/") + "/fhir/" + o.Source + "/notifications"
	handshake, err := os.ReadFile(filepath.Join(o.Dir, "handshake.json"))
	if err != nil {
		return err
	}
	template, err := os.ReadFile(filepath.Join(o.Dir, "appointment-booked.json"))
	if err != nil {
		return err
	}
	suffix := strings.ToLower(rand.Text()[:10])
	email := "patient." + suffix + "@example.org"
	booked, err := NewBooking(template, "demo-"+suffix, "demo-patient-"+suffix, email)
	if err != nil {
		return err
	}

	steps := []struct {
		what string
		body []byte
	}{
		{"subscription handshake", handshake},
		{"appointment booked (patient email " + email + ")", booked},
		{"the same notification again, as an EHR retry would", booked},
		{"a malformed body", []byte(`{"resourceType":"Bundle","type":"history","entry":[`)},
	}
	for _, s := range steps {
		code, outcome, err := Post(ctx, endpoint, o.Token, s.body)
		if err != nil {
			return fmt.Errorf("post %s: %w (is `make run` running?)", s.what, err)
		}
		fmt.Fprintf(o.Out, "POST %s\n  -> %d %s\n", s.what, code, outcome)
	}

	fmt.Fprintf(o.Out, "\nwaiting for the email in the dev inbox...\n")
	msgs, err := WaitForEmail(ctx, o.InboxURL, email, o.Wait)
	if err != nil {
		return err
	}
	time.Sleep(2 * time.Second) // give a duplicate the chance to show up
	if msgs, err = Emails(ctx, o.InboxURL, email); err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "  %d email(s) to %s; subject: %q\n  open %s to read it\n", len(msgs), email, msgs[0].Subject, strings.TrimRight(o.InboxURL, "/")+"/")
	if len(msgs) != 1 {
		return fmt.Errorf("expected exactly one email, got %d", len(msgs))
	}
	return nil
}

// NewBooking returns the sample notification with a new appointment id,
// patient id and patient email, so every run is a new booking.
func NewBooking(template []byte, apptID, patientID, email string) ([]byte, error) {
	var b map[string]any
	if err := json.Unmarshal(template, &b); err != nil {
		return nil, fmt.Errorf("sample notification: %w", err)
	}
	s := string(template)
	s = strings.ReplaceAll(s, "Appointment/2docs", "Appointment/"+apptID)
	s = strings.ReplaceAll(s, `"id": "2docs"`, `"id": "`+apptID+`"`)
	s = strings.ReplaceAll(s, "Patient/example", "Patient/"+patientID)
	s = strings.ReplaceAll(s, `"id": "example"`, `"id": "`+patientID+`"`)
	s = strings.ReplaceAll(s, "peter.chalmers.demo@example.org", email)
	if !json.Valid([]byte(s)) || !strings.Contains(s, apptID) || !strings.Contains(s, email) {
		return nil, errors.New("sample notification: unexpected shape")
	}
	return []byte(s), nil
}

// Post sends body as a FHIR notification and returns the status code and the
// OperationOutcome's diagnostics.
func Post(ctx context.Context, endpoint, token string, body []byte) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/fhir+json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var oo struct {
		Issue []struct {
			Severity, Code, Diagnostics string
		}
	}
	_ = json.Unmarshal(raw, &oo)
	var parts []string
	for _, is := range oo.Issue {
		parts = append(parts, is.Severity+"/"+is.Code+": "+is.Diagnostics)
	}
	return resp.StatusCode, strings.Join(parts, "; "), nil
}

// Email is what the inbox API reports of one message.
type Email struct {
	ID      string   `json:"id"`
	To      []string `json:"to"`
	Subject string   `json:"subject"`
	Text    string   `json:"text"`
	HTML    string   `json:"html"`
	TLS     bool     `json:"tls"`
}

// Emails lists the inbox's messages to addr.
func Emails(ctx context.Context, inboxURL, addr string) ([]Email, error) {
	u := strings.TrimRight(inboxURL, "/") + "/api/messages?to=" + url.QueryEscape(addr)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var list struct {
		Messages []Email `json:"messages"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		return nil, fmt.Errorf("inbox api: %w", err)
	}
	return list.Messages, nil
}

// WaitForEmail polls the inbox until a message to addr arrives.
func WaitForEmail(ctx context.Context, inboxURL, addr string, wait time.Duration) ([]Email, error) {
	deadline := time.Now().Add(wait)
	for {
		msgs, err := Emails(ctx, inboxURL, addr)
		if err == nil && len(msgs) > 0 {
			return msgs, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no email to %s within %s (last error: %v); check the service logs", addr, wait, err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
