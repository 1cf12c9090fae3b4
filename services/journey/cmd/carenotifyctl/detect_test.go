package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/carenotify/carenotify/pkg/corpus"
)

func TestDetectFile(t *testing.T) {
	dir := corpus.Dir(t)
	read := func(rel string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, rel))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name string
		give []byte
		want string
	}{
		{name: "SIU", give: read("hl7v2/SIU_S12/msconv-SIU-S12-01.hl7"), want: fileHL7},
		{name: "batch", give: read("hl7v2/batch/pyhl7-sample_batch.hl7"), want: fileHL7},
		{name: "MLLP frame", give: []byte("\x0bMSH|^~\\&|\x1c\r"), want: fileHL7},
		{name: "FHIR resource", give: []byte(`{"resourceType":"Appointment","id":"a1"}`), want: fileFHIR},
		{name: "event", give: []byte(`{"eventId":"e1","kind":"appointment","action":"booked"}`), want: fileEvents},
		{name: "events array", give: []byte(`[{"eventId":"e1"}]`), want: fileEvents},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := detectFile(tt.give); got != tt.want {
				t.Errorf("detectFile = %q, want %q", got, tt.want)
			}
		})
	}
}
