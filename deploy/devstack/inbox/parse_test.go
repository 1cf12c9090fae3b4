package inbox

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		give string // file in testdata
		want Message
	}{
		{
			name: "plain without content type",
			give: "plain.eml",
			want: Message{
				Subject: "Appointment reminder",
				Text:    "Your appointment is on Monday at 9:00.\nReply STOP to opt out.\n",
			},
		},
		{
			name: "alternative, quoted-printable and base64, encoded subject",
			give: "alternative.eml",
			want: Message{
				Subject: "Rappel: rendez-vous à 9h",
				Text: "Bonjour Jeanne,\nRappel : rendez-vous à 9h. " +
					"Une ligne très longue qui est coupée par un saut de ligne doux.",
				HTML: "<p>Bonjour Jeanne,</p>\n<p>Rappel&nbsp;: rendez-vous &agrave; 9h.</p>\n",
			},
		},
		{
			name: "latin-1 body and subject",
			give: "latin1.eml",
			want: Message{
				Subject: "Rappel: rendez-vous à 9h",
				Text:    "Rappel : rendez-vous à 9h.\n",
			},
		},
		{
			name: "nested multipart skips attachments",
			give: "mixed.eml",
			want: Message{
				Subject: "Your documents",
				Text:    "Your documents are attached.",
				HTML:    "<p>Your documents are attached.</p>",
			},
		},
		{
			name: "html only",
			give: "html-only.eml",
			want: Message{
				Subject: "HTML only",
				HTML:    "<p>Only <b>HTML</b>.</p>\n",
			},
		},
		{
			name: "unknown charset kept as is",
			give: "unknown-charset.eml",
			want: Message{
				Subject: "Unknown charset",
				Text:    "Plain ASCII despite the label.\n",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parse(readTestdata(t, tt.give))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.IgnoreFields(Message{}, "Headers")); diff != "" {
				t.Errorf("parse (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseHeaders(t *testing.T) {
	got, err := parse(readTestdata(t, "alternative.eml"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"From":         {"Clinique Exemple <noreply@clinic.example.org>"},
		"To":           {"Jeanne Exemple <patient@example.com>"},
		"Subject":      {"Rappel: rendez-vous à 9h"},
		"Date":         {"Mon, 02 Mar 2026 09:00:00 +0000"},
		"Message-Id":   {"<alt-1@clinic.example.org>"},
		"Mime-Version": {"1.0"},
		"Content-Type": {`multipart/alternative; boundary="b1"`},
	}
	if diff := cmp.Diff(want, got.Headers); diff != "" {
		t.Errorf("headers (-want +got):\n%s", diff)
	}
}

// FuzzParse checks that no input makes parse panic. The seed corpus is the
// messages in testdata.
func FuzzParse(f *testing.F) {
	entries, err := os.ReadDir("testdata")
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		if filepath.Ext(e.Name()) == ".eml" {
			f.Add(readTestdata(f, e.Name()))
		}
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		parse(raw)
	})
}
