package consent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/carenotify/carenotify/pkg/store"
	"github.com/carenotify/carenotify/services/journey/internal/app"
)

var _ app.ContactStore = (*Store)(nil)

// ContactsTTL is how long a patient's contact record is kept after it
// last changed; a later event carrying contacts stores them again.
const ContactsTTL = 400 * 24 * time.Hour

// contactsKey names a patient's contact record: only the keyed hash of
// the patient id is in the key.
func (s *Store) contactsKey(tenant, patient string) string {
	return store.Key(tenant, "contacts", s.PatientHash(tenant, patient))
}

// contacts is a contact record as stored (sealed: every field is PHI).
type contacts struct {
	Patient  string    `json:"patient"`
	Emails   []string  `json:"emails,omitempty"`
	Phones   []string  `json:"phones,omitempty"`
	Language string    `json:"language,omitempty"`
	TimeZone string    `json:"timeZone,omitempty"`
	AsOf     time.Time `json:"asOf"`
}

// Contacts implements app.ContactStore. A record that does not open, does
// not decode or belongs to another patient is an error, not "none": the
// event is retried rather than sent without the patient's contacts.
func (s *Store) Contacts(ctx context.Context, tenant, patient string) (app.Contacts, error) {
	b, err := store.GetSealed(ctx, s.c, s.sealer, tenant, s.contactsKey(tenant, patient))
	if errors.Is(err, store.ErrNotFound) {
		return app.Contacts{}, app.ErrNotFound
	}
	if err != nil {
		return app.Contacts{}, fmt.Errorf("read contacts: %w", err)
	}
	var r contacts
	if err := json.Unmarshal(b, &r); err != nil {
		return app.Contacts{}, errors.New("read contacts: record does not decode")
	}
	if r.Patient != patient {
		return app.Contacts{}, errors.New("read contacts: record is not for this patient")
	}
	return app.Contacts{Emails: r.Emails, Phones: r.Phones, Language: r.Language, TimeZone: r.TimeZone, AsOf: r.AsOf}, nil
}

// PutContacts implements app.ContactStore.
func (s *Store) PutContacts(ctx context.Context, tenant, patient string, c app.Contacts) error {
	b, err := json.Marshal(contacts{Patient: patient, Emails: c.Emails, Phones: c.Phones, Language: c.Language, TimeZone: c.TimeZone, AsOf: c.AsOf.UTC()})
	if err != nil {
		return fmt.Errorf("store contacts: %w", err)
	}
	if err := store.SetSealed(ctx, s.c, s.sealer, tenant, s.contactsKey(tenant, patient), b, ContactsTTL); err != nil {
		return fmt.Errorf("store contacts: %w", err)
	}
	return nil
}
