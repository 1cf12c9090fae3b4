// Package smsclient is journey's client of the sms service
// (carenotify.sms.v1.SmsService): app.SMSSender over gRPC.
package smsclient
