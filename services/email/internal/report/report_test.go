package report_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/carenotify/carenotify/services/email/internal/report"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		give    string // a file in testdata
		want    report.Report
		wantErr bool
	}{
		{name: "RFC 3464 failed 5.1.1", give: "dsn-failed.eml", want: report.Report{Kind: report.HardBounce, Status: "5.1.1", MessageID: "<20261123030000.RAA14128@relay.example.net>"}},
		{name: "RFC 3464 failed 4.4.7", give: "dsn-failed-4xx.eml", want: report.Report{Kind: report.OtherDSN}},
		{name: "RFC 3464 delayed", give: "dsn-delayed.eml", want: report.Report{Kind: report.OtherDSN}},
		{name: "RFC 5965 abuse", give: "arf-abuse.eml", want: report.Report{Kind: report.Complaint, FeedbackType: "abuse", MessageID: "<arf.8812.abuse@feedback.mailbox.example>"}},
		{name: "RFC 5965 not-spam", give: "arf-not-spam.eml", want: report.Report{Kind: report.NotReport, FeedbackType: "not-spam"}},
		{name: "auto-reply", give: "autoreply.eml", want: report.Report{Kind: report.NotReport}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata", tt.give))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			got, err := report.Parse(f)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Parse() error = %v, wantErr %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Parse() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseMalformed(t *testing.T) {
	tests := []struct {
		name string
		give string
	}{
		{name: "no status part", give: "Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b--\r\n"},
		{name: "no recipient group", give: "Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; x\r\n--b--\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := report.Parse(strings.NewReader(tt.give)); err == nil {
				t.Errorf("Parse() = %+v, want an error", got)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.eml"))
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := report.Parse(strings.NewReader(string(b)))
		if err == nil && r.Kind == "" {
			t.Errorf("Parse() = %+v without error or kind", r)
		}
	})
}
