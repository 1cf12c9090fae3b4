// Package server is the email service's transport layer: it serves
// carenotify.email.v1.EmailService over gRPC, decodes requests into app
// calls and maps app errors to gRPC status codes in one place ([toStatus]).
// Field violations travel as google.rpc.BadRequest details
// (https://google.aip.dev/193).
//
// It also serves one-click unsubscribe over HTTP ([Unsubscribe], RFC 8058)
// and receives bounces and complaint reports over SMTP ([Bounces], RFC 3464
// and RFC 5965).
package server
