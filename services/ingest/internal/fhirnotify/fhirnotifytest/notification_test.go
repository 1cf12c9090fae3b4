package fhirnotifytest_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/carenotify/carenotify/services/ingest/internal/fhirnotify/fhirnotifytest"
)

var update = flag.Bool("update", false, "rewrite testdata/appointment-booked-notification.json")

// The fixture that devstack's `make demo` posts is built from the corpus
// files named in the package documentation; -update rebuilds it.
func TestGoldenAppointmentBookedNotification(t *testing.T) {
	golden := filepath.Join("..", "..", "..", "testdata", "appointment-booked-notification.json")
	got := fhirnotifytest.AppointmentNotification(t, fhirnotifytest.BookedOptions)
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is stale: run go test ./internal/fhirnotify/fhirnotifytest -update", golden)
	}
}
