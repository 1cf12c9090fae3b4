// Package twiliotest is a stand-in for Twilio's Programmable Messaging
// cloud, which tests and the development stack cannot reach. It speaks
// Twilio's wire format, not a simplification of it:
//
//   - POST /2010-04-01/Accounts/{AccountSid}/Messages.json, HTTP basic
//     auth (Account SID and auth token), form-encoded To, From or
//     MessagingServiceSid, Body and StatusCallback; 201 with the Message
//     resource as JSON (sid "SM" + 32 hex digits, status "queued", or
//     "accepted" with a messaging service, num_segments as a string).
//   - Errors as Twilio's error JSON {"code", "message", "more_info",
//     "status"}: 401/20003 bad credentials, 400/21604 no To, 21603 no From,
//     21602 no Body, 21617 body over 1,600 characters, 21211 To not a valid
//     number (the message quotes the number, as Twilio's does), 21610 the
//     recipient replied STOP; 404/20404 another account's path; 405/20004.
//     Failures can be injected ([Server.Fail]): 429/20429 and 5xx/20500.
//   - Status callbacks ([Server.Receipt]) and inbound messages
//     ([Server.Inbound]) posted form-encoded with the parameters Twilio
//     posts and an X-Twilio-Signature: base64 HMAC-SHA1, keyed with the
//     auth token, of the full URL followed by each POST parameter's name
//     and value, sorted by name
//     (https://www.twilio.com/docs/usage/security#validating-requests).
//     The TwiML answer to an inbound message is parsed and its <Message>
//     recorded as a reply, as Twilio would send it.
//
// Signatures are computed here independently of the sms service's
// verifier, so a mistake in one is caught by the other.
package twiliotest
