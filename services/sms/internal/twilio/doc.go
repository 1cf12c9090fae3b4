// Package twilio is the sms service's provider adapter for Twilio
// Programmable Messaging: it sends a message with the Messages API
// (POST {base}/2010-04-01/Accounts/{AccountSid}/Messages.json,
// form-encoded, HTTP basic auth; https://www.twilio.com/docs/messaging/api/message-resource#create-a-message-resource),
// classifies Twilio's error JSON ({"code", "message", "more_info",
// "status"}) into retryable and permanent failures without keeping its
// message text (which quotes the number), and verifies X-Twilio-Signature
// on webhooks (https://www.twilio.com/docs/usage/security#validating-requests).
//
// Only the request validator of github.com/twilio/twilio-go would be of
// use here, and that module is large; the signature is a dozen lines of
// stdlib HMAC-SHA1, checked against Twilio's published example.
package twilio
