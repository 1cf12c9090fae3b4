// Package bench is carenotify's benchmark harness (issue 7, `make bench`):
// it measures each scenario's system leg back to back with a ceiling leg
// on the same machine and reports the ratio, since only ratios survive the
// noise of shared machines.
//
// Its building blocks: an open-loop load generator that sends at planned
// times and measures latency from them (no coordinated omission, see Gil
// Tene, "How NOT to Measure Latency"), a closed loop for throughput, a
// log-linear latency histogram in the manner of HdrHistogram
// (https://hdrhistogram.github.io/HdrHistogram/), machine and process CPU
// readings from /proc, and a markdown writer for bench/results.md.
//
// Scenarios measured today:
//
//   - a, a′: FHIR R4 backport notifications posted to an ingest process,
//     which answers after JetStream acknowledged the event: full-resource,
//     and id-only, ingest fetching each focus Appointment from a stand-in
//     FHIR server in the harness (fhirserver.go: SMART Backend Services
//     token endpoint checking the ES384 client assertion, token-guarded
//     reads); ceiling: JetStream sync publishes of the same event. a′ runs
//     NATS with sync_interval always.
//   - b: the whole stack, event to email in an SMTP sink with STARTTLS, at
//     stepped open-loop rates; ceiling: raw SMTP into the same sink.
//   - d: HL7 v2 ADT^A01 and ORU^R01 from the shared corpus over MLLP to an
//     ingest process, which acknowledges after the PubAck; ceiling: an
//     MLLP server in the harness that acknowledges at once.
//   - e: 1M pending journey timers as JetStream message schedules on
//     JOURNEY_TIMERS: scheduling rate, bytes and memory per pending
//     timer, firing skew at 2,000/s; the 1M system leg writes the exact
//     message journey's timer store writes (sealed per timer), and a real
//     path leg drives bookings through ingest and journey at a smaller N;
//     ceiling: bare message schedules of the same size.
//   - f: journey evaluation: booked events pre-queued on EHR_EVENTS
//     (posted through ingest while journey is stopped) through journey's
//     events consumer: the CEL condition, consent checked at a send step
//     (denied, so nothing is sent), a wait_until timer planned, audit
//     records; ceiling: the same events consumed with the same consumer
//     code (pkg/bus Consume) and a handler that does nothing.
//
// Scenario c: 50,000 emails to one SMTP sink (STARTTLS, 20 connections),
// both legs pre-queued and timed at the sink, each leg run -runs times
// (the median is reported) with a per-message latency histogram from the
// start of delivery to the sink storing the message. The system leg
// queues every send through the email service's gRPC Send while the sink
// holds new connections, then releases them. The ceiling is Listmonk sending a
// 50,000-recipient campaign with the same subject and body; it runs only
// when a Listmonk build is given, and is skipped with the reason when not:
//
//   - LISTMONK_BIN: a Listmonk binary (built by the user, outside this
//     repository; never committed here).
//   - LISTMONK_DIR: the directory Listmonk runs in, for a binary without
//     its assets packed in (stuffbin): it reads queries/, schema.sql,
//     static/, i18n/ and frontend/dist from there. Default: the binary's
//     directory.
//   - LISTMONK_PG_BIN: where initdb, postgres and psql are; default the
//     newest /usr/lib/postgresql/*/bin, then PATH. The harness starts a
//     throwaway PostgreSQL cluster (temporary directory, unix socket only,
//     as the "postgres" or "nobody" user when the harness is root) and
//     removes it afterwards.
//
// The harness runs only from `make bench`/`make bench-smoke`; its tests
// check the building blocks and never assert on timing.
package bench
