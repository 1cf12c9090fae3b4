// Package hl7 reads and writes HL7 version 2 messages in the traditional
// "ER7" pipe-and-hat encoding, and frames them for the Minimal Lower Layer
// Protocol (MLLP). It was written for carenotify: no usable Go HL7 library
// is reachable from the build.
//
// It implements:
//
//   - the encoding rules of HL7 v2.5.1 chapter 2, section 2.5 and 2.7
//     (https://www.hl7.org/implement/standards/product_brief.cfm?product_id=144):
//     delimiters from MSH-1/MSH-2 (with the v2.7 truncation character),
//     segments ended by CR (LF and CRLF are tolerated, as are a leading
//     UTF-8 byte order mark and blank lines), repetitions, components and
//     subcomponents, escape sequences (\F\ \S\ \T\ \R\ \E\ \P\ \Xhh\ and the
//     formatting commands, which become newlines or are dropped), and
//     Z-segments, which are kept like any other;
//   - the character sets of MSH-18 (table 0211) that occur in practice:
//     ASCII, UNICODE UTF-8 and 8859/1, turned into UTF-8;
//   - the acknowledgement message (section 2.9 and 2.15.8, MSA and the v2.5
//     ERR segment with table 0357 codes) in original and enhanced mode;
//   - batches (section 2.10.3, FHS/BHS/BTS/FTS);
//   - MLLP release 2 framing (HL7 v2.5.1 appendix C.4: start block 0x0B,
//     end block 0x1C 0x0D).
//
// Values are decoded when they are read, not when the message is parsed.
// Errors are *ParseError values that name a location and a table 0357 code;
// they never carry a value from the message, which may be PHI.
package hl7
