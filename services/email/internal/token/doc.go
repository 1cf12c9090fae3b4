// Package token makes and checks the signed opaque tokens the email
// service puts in links and addresses: the one-click unsubscribe token of
// a List-Unsubscribe URL (RFC 8058) and the VERP token of a bounce address.
//
// Tokens carry a tenant and a message id (never PHI) and an HMAC-SHA256
// tag (RFC 2104) under a key of the deployment, with a separate domain
// string per kind so that one kind of token is never accepted as another.
package token
