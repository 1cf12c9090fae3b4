package app

import (
	"sync"
	"time"

	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
)

// zones finds the time zone a patient's quiet hours are kept and times
// shown in: the patient's own (from the event, see ClinicalEvent's
// Patient.time_zone), else the tenant's default, else the deployment's
// (WithLocation).
type zones struct {
	tenants map[string]*time.Location
	cache   sync.Map // IANA name → *time.Location, or nil for a name that does not load
}

// WithTenantZones sets each tenant's default time zone, for patients
// whose own zone is unknown (JOURNEY_TENANTS_FILE timezone).
func WithTenantZones(z map[string]*time.Location) Option {
	return func(s *Service) { s.zones.tenants = z }
}

// zoneFor returns the time zone of ev's patient: the zone the event
// names when it is a known IANA zone, else the tenant's, else s.loc.
// Wait_until times do not depend on it: they are absolute instants.
func (s *Service) zoneFor(ev *eventsv1.ClinicalEvent) *time.Location {
	if loc := s.zones.load(ev.GetPatient().GetTimeZone()); loc != nil {
		return loc
	}
	if loc := s.zones.tenants[ev.GetTenant()]; loc != nil {
		return loc
	}
	return s.loc
}

// load returns the zone named name, nil when name is empty or unknown.
// Zones are loaded once (the zone database is built in).
func (z *zones) load(name string) *time.Location {
	if name == "" || name == "Local" {
		return nil
	}
	if v, ok := z.cache.Load(name); ok {
		loc, _ := v.(*time.Location)
		return loc
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		loc = nil
	}
	if len(name) <= 64 { // a bounded cache: names from the EHR are not trusted
		z.cache.Store(name, loc)
	}
	return loc
}
