// Package consentlog publishes the journey service's consent changes to
// the CONSENT stream (pkg/bus.Consent), sealed with pkg/envelope (binding
// tenant, kind "consent-change", change id), before the consent record in
// Redis is written, and replays them for AdminService.RebuildConsent. It
// implements app.ConsentLog. Subjects are consent.<tenant>.<channel>.<purpose>:
// no patient id, which only the sealed body holds.
package consentlog
