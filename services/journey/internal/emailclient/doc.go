// Package emailclient implements app.EmailSender with the email service's
// gRPC API (carenotify.email.v1.EmailService.Send), and maps its status
// codes onto the journey service's retry decisions, in this one place.
package emailclient
