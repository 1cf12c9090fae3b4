// Package timers keeps the journey service's durable timers as JetStream
// message schedules (ADR-51, nats-server 2.12 and later) on the
// JOURNEY_TIMERS stream (see bus.JourneyTimers).
//
// A wait publishes one schedule on
// journey.timers.<tenant>.<journey>.<instance>.<step> ("@at" the due
// time, whole seconds) whose target is
// journey.fire.<tenant>.<journey>.<instance>.<step>; re-publishing on the
// same subject replaces the schedule (the server rolls the subject up),
// and purging it cancels. <instance> is a hash that reveals no resource
// id. The body is the continuation — journey id and version, the step to
// resume at, and the event — sealed with pkg/envelope and bound to tenant,
// kind "journey-timer" and id "<journey>.<instance>.<step>", so a body
// moved to another subject does not open. The server copies the body and
// headers onto the fire subject when the schedule is due and removes the
// schedule; the fired message carries a TTL (FiredTTL) since the stream
// has no MaxAge.
//
// Pending lists an instance's schedules not yet fired, with their step and
// due time read from the stored "@at" header, for replan_on; Remove purges
// one step's schedule and fired message.
package timers
