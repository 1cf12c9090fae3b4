// Package demo drives a running stack the way an EHR would: it posts a
// subscription handshake, a booked appointment (twice, as EHRs retry), and a
// malformed body, then shows what arrived in the development inbox. `make
// demo` runs it against `make run`; the end-to-end tests reuse its pieces.
package demo
