// Package server is the email service's transport layer: it serves
// carenotify.email.v1.EmailService over gRPC, decodes requests into app
// calls and maps app errors to gRPC status codes in one place ([toStatus]).
// Field violations travel as google.rpc.BadRequest details
// (https://google.aip.dev/193).
package server
