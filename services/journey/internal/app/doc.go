// Package app holds the journey service's use cases: turning one clinical
// event into the messages its journeys send, and listing the loaded
// journeys. It knows nothing of NATS or gRPC: the event arrives decoded,
// and messages leave through [EmailSender], which internal/emailclient
// implements. Journeys start when their when: condition holds; a wait
// step hands a [Timer] to [Timers] (internal/timers) and the journey
// resumes at the next step through [Service.Resume] when it fires. A
// replan_on event re-plans the pending timers of its instance; a wait_for
// step marks the instance as waiting in [Waits] (internal/waits) and sets
// its timeout as a timer, and the awaited event or the timeout, whichever
// claims the wait first, continues it. A step's if: is evaluated when the
// step comes up.
//
// Frequency caps count every send per patient and purpose in
// [FrequencyCaps] (internal/consent) and suppress a capped journey's
// non-critical sends over the cap.
//
// Before every send, at send time, the patient's consent is read from a
// [ConsentStore] (internal/consent): treatment and operations go unless
// denied or revoked, marketing only with a grant, and a store that cannot
// answer retries the event (fail closed). A send step inside its
// journey's quiet hours is deferred with a timer to the window's end.
//
// Idempotency (ARCHITECTURE.md, "Data flow", step 3): every send carries a
// key derived from the tenant, the journey, the resource the event is about
// and the step, so a redelivered or re-sent event (an EHR that sends the
// same booking again with a new version) never sends the same step twice.
package app
