// Package smtptest runs a real SMTP server (github.com/emersion/go-smtp)
// for tests, with STARTTLS (RFC 3207) under a throw-away test CA, and
// records what it receives. It is the email service's test double for the
// hospital's relay, in the manner of net/http/httptest.
package smtptest
