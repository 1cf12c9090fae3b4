// Package mllp frames HL7 v2 messages for the Minimal Lower Layer Protocol,
// release 2 (HL7 v2.5.1 appendix C, "Lower Layer Protocols", section C.4):
// each message is sent as a start block 0x0B, the message, and an end
// block 0x1C 0x0D.
//
// [Reader] is tolerant of what real senders do: bytes between frames are
// skipped, a start block inside an unfinished frame starts over, and a
// frame over the maximum size is reported once ([ErrFrameTooLarge]) and
// skipped up to the next start block, so memory stays bounded by that size.
package mllp
