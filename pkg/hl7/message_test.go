package hl7_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/carenotify/carenotify/pkg/hl7"
	"github.com/carenotify/carenotify/pkg/hl7/hl7test"
)

var fixedNow = time.Date(2026, 11, 23, 2, 30, 0, 0, time.UTC)

const sample = "MSH|^~\\&|SEND|FAC^1.2.3^ISO|RECV|RFAC|20240102030405.12-0500||SIU^S12^SIU_S12|CTL1|P|2.5.1|||AL|NE||UNICODE UTF-8\r" +
	"SCH|PL1^EHR|FL1||||||||^^^20240110093000-0500\r" +
	"PID|1||MRN1^^^HOSP^MR~X2^^^OTHER||Doe^Jane^Q~Roe^R||19800102|F|||||^NET^Internet^j@example.org~^PRN^CP^^1^555^1234567||es\r" +
	"NTE|1||a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f\\.br\\g\\X4A\\\\H\\h\\N\\ \\XC3A9\\\r" +
	"ZPI|custom^z&sub\r"

func TestGet(t *testing.T) {
	m, err := hl7.Parse([]byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		give string
		want string
	}{
		{give: "MSH-1", want: "|"},
		{give: "MSH-2", want: "^~\\&"},
		{give: "MSH-4", want: "FAC"},
		{give: "MSH-4-2", want: "1.2.3"},
		{give: "MSH-9-2", want: "S12"},
		{give: "PID-3", want: "MRN1"},
		{give: "PID-3-4", want: "HOSP"},
		{give: "PID-3(2)-4", want: "OTHER"},
		{give: "PID-5-1", want: "Doe"},
		{give: "PID-5(2)-2", want: "R"},
		{give: "PID-13(2)-3", want: "CP"},
		{give: "NTE-3", want: "a|b^c&d~e\\f\ngJh é"},
		{give: "ZPI-1-2", want: "z"},
		{give: "ZPI-1-2-2", want: "sub"},
		{give: "PID-99", want: ""},
		{give: "OBX-1", want: ""},
		{give: "PID", want: ""},
		{give: "PID[2]-1", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			if got := m.Get(tt.give); got != tt.want {
				t.Errorf("Get(%q) = %q, want %q", tt.give, got, tt.want)
			}
		})
	}
	if got, want := m.Type(), (hl7.MessageType{Code: "SIU", Trigger: "S12", Structure: "SIU_S12"}); got != want {
		t.Errorf("Type() = %v, want %v", got, want)
	}
	if got := m.ControlID(); got != "CTL1" {
		t.Errorf("ControlID() = %q", got)
	}
	ts, err := m.Time(nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2024, 1, 2, 8, 4, 5, 120000000, time.UTC); !ts.Time.Equal(want) || ts.Precision != hl7.PrecisionFraction || !ts.HasOffset {
		t.Errorf("Time() = %+v, want %v", ts, want)
	}
	if got := len(m.Segments("ZPI")); got != 1 {
		t.Errorf("Z-segments kept: %d", got)
	}
}

func TestParseLineEndingsAndBOM(t *testing.T) {
	base := strings.ReplaceAll(sample, "\r", "\n")
	for name, give := range map[string]string{
		"cr": sample, "lf": base, "crlf": strings.ReplaceAll(sample, "\r", "\r\n"),
		"bom": "\xEF\xBB\xBF" + sample, "blank lines": strings.ReplaceAll(sample, "\r", "\r\n\r\n"),
	} {
		m, err := hl7.Parse([]byte(give))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := len(m.Segments("")); got != 5 {
			t.Errorf("%s: %d segments, want 5", name, got)
		}
		if got := m.Get("PID-5-2"); got != "Jane" {
			t.Errorf("%s: PID-5-2 = %q", name, got)
		}
	}
}

func TestParseDelimiters(t *testing.T) {
	m, err := hl7.Parse(hl7test.Read(t, "other/hapi-segmentfinder_a24.hl7"))
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Type(); got.Code != "ADT" || got.Trigger != "A24" {
		t.Errorf("Type() = %v", got)
	}
	if got := m.Get("PID[2]-3-6-2"); got != "200M" {
		t.Errorf("PID[2]-3-6-2 = %q", got)
	}
	m, err = hl7.Parse([]byte("MSH|^~\\&#|A|B|C|D|20240101||ADT^A08|X|P|2.7\rPID|1||a\\P\\b#\r"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Delims.Truncation != '#' || m.Get("PID-3") != "a#b#" {
		t.Errorf("truncation: %q %q", m.Delims.Truncation, m.Get("PID-3"))
	}
}

func TestParseCharset(t *testing.T) {
	latin := []byte("MSH|^~\\&|A|B|C|D|20240101||ADT^A08|X|P|2.5||||||8859/1\rPID|1||1||M\xfcller^J\xe9r\xf4me\r")
	m, err := hl7.Parse(latin)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Get("PID-5-1") + " " + m.Get("PID-5-2"); got != "Müller Jérôme" {
		t.Errorf("8859/1 decoded to %q", got)
	}
	_, err = hl7.Parse([]byte("MSH|^~\\&|A|B|C|D|20240101||ADT^A08|X|P|2.5||||||ISO IR87\rPID|1\r"))
	assertErr(t, err, &hl7.ParseError{Segment: "MSH", SegIndex: 1, Field: 18, Code: "103"})
	_, err = hl7.Parse([]byte("MSH|^~\\&|A|B|C|D|20240101||ADT^A08|X|P|2.5||||||UNICODE UTF-8\rPID|1||\xff\r"))
	assertErr(t, err, &hl7.ParseError{Segment: "MSH", SegIndex: 1, Field: 18, Code: "102"})
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		give string
		want *hl7.ParseError
	}{
		{name: "empty", give: "", want: &hl7.ParseError{Code: "100"}},
		{name: "no msh", give: "PID|1|secret\r", want: &hl7.ParseError{Segment: "PID", SegIndex: 1, Code: "100"}},
		{name: "short msh", give: "MSH|", want: &hl7.ParseError{Segment: "MSH", SegIndex: 1, Field: 2, Code: "101"}},
		{name: "bad encoding", give: "MSH|^^~\\|A\r", want: &hl7.ParseError{Segment: "MSH", SegIndex: 1, Field: 2, Code: "102"}},
		{name: "bad segment id", give: "MSH|^~\\&|A\rPID|1\rsecret name\r", want: &hl7.ParseError{SegIndex: 3, Code: "100"}},
		{name: "second msh", give: "MSH|^~\\&|A\rMSH|^~\\&|B\r", want: &hl7.ParseError{Segment: "MSH", SegIndex: 2, Code: "100"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := hl7.Parse([]byte(tt.give))
			assertErr(t, err, tt.want)
			if err != nil && strings.Contains(err.Error(), "secret") {
				t.Errorf("error %q quotes the message", err)
			}
		})
	}
}

func assertErr(t *testing.T, err error, want *hl7.ParseError) {
	t.Helper()
	var pe *hl7.ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("error = %v, want a *ParseError", err)
	}
	got := &hl7.ParseError{Segment: pe.Segment, SegIndex: pe.SegIndex, Field: pe.Field, Component: pe.Component, Code: pe.Code}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("error %v (-want +got):\n%s", err, diff)
	}
}

func TestParseTS(t *testing.T) {
	tests := []struct {
		give     string
		want     time.Time
		wantPrec hl7.Precision
		wantErr  bool
	}{
		{give: "2024", want: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), wantPrec: hl7.PrecisionYear},
		{give: "202402", want: time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC), wantPrec: hl7.PrecisionMonth},
		{give: "20240229", want: time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), wantPrec: hl7.PrecisionDay},
		{give: "202402291230+0215", want: time.Date(2024, 2, 29, 10, 15, 0, 0, time.UTC), wantPrec: hl7.PrecisionMinute},
		{give: "20240229123005.5", want: time.Date(2024, 2, 29, 12, 30, 5, 500000000, time.UTC), wantPrec: hl7.PrecisionFraction},
		{give: "20240229123005^S", want: time.Date(2024, 2, 29, 12, 30, 5, 0, time.UTC), wantPrec: hl7.PrecisionSecond},
		{give: "20230229", wantErr: true},
		{give: "2024022", wantErr: true},
		{give: "20240229+25", wantErr: true},
		{give: "abc", wantErr: true},
	}
	for _, tt := range tests {
		got, err := hl7.ParseTS(tt.give, nil)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseTS(%q) error = %v, wantErr %v", tt.give, err, tt.wantErr)
			continue
		}
		if !tt.wantErr && (!got.Time.Equal(tt.want) || got.Precision != tt.wantPrec) {
			t.Errorf("ParseTS(%q) = %v/%d, want %v/%d", tt.give, got.Time, got.Precision, tt.want, tt.wantPrec)
		}
	}
}

func TestEscapeRoundTrip(t *testing.T) {
	d := hl7.DefaultDelimiters
	for _, s := range []string{"plain", "a|b^c~d\\e&f", "line1\nline2", ""} {
		want := strings.ReplaceAll(s, "\r", "")
		if got := hl7.Unescape(hl7.Escape(s, d), d); got != want {
			t.Errorf("Unescape(Escape(%q)) = %q", s, got)
		}
	}
}

func TestBuildACK(t *testing.T) {
	m, err := hl7.Parse([]byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	raw := hl7.BuildACK(m, hl7.AckError, []*hl7.ParseError{{Segment: "PID", SegIndex: 3, Field: 5, Component: 1, Code: "101", Msg: "family name ^ missing"}}, fixedNow)
	ack, err := hl7.Parse(raw)
	if err != nil {
		t.Fatalf("ACK does not parse: %v\n%s", err, raw)
	}
	got := map[string]string{}
	for _, p := range []string{"MSH-3", "MSH-4", "MSH-5", "MSH-6", "MSH-9", "MSH-9-2", "MSH-9-3", "MSH-11", "MSH-12", "MSH-18", "MSA-1", "MSA-2", "ERR-2-1", "ERR-2-2", "ERR-2-3", "ERR-2-4", "ERR-2-5", "ERR-3-1", "ERR-3-2", "ERR-3-3", "ERR-4"} {
		got[p] = ack.Get(p)
	}
	want := map[string]string{
		"MSH-3": "RECV", "MSH-4": "RFAC", "MSH-5": "SEND", "MSH-6": "FAC", "MSH-9": "ACK", "MSH-9-2": "S12", "MSH-9-3": "ACK",
		"MSH-11": "P", "MSH-12": "2.5.1", "MSH-18": "UNICODE UTF-8", "MSA-1": "AE", "MSA-2": "CTL1",
		"ERR-2-1": "PID", "ERR-2-2": "3", "ERR-2-3": "5", "ERR-2-4": "1", "ERR-2-5": "1",
		"ERR-3-1": "101", "ERR-3-2": "family name ^ missing", "ERR-3-3": "HL70357", "ERR-4": "E",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ACK fields (-want +got):\n%s", diff)
	}
	if ack.MSH().Field(4).Raw() != "RFAC" || ack.Get("MSH-6-2") != "1.2.3" {
		t.Errorf("sending facility not swapped whole: %q", ack.MSH().Field(6).Raw())
	}

	// No MSH at all: a minimal AR.
	ack, err = hl7.Parse(hl7.BuildACK(nil, hl7.AckReject, []*hl7.ParseError{{Code: "100", Msg: "empty message"}}, fixedNow))
	if err != nil {
		t.Fatal(err)
	}
	if ack.Get("MSA-1") != "AR" || ack.Get("MSA-2") != "" || ack.Get("MSH-9") != "ACK" || ack.Get("ERR-3-1") != "100" {
		t.Errorf("minimal ACK wrong: %v", ack.Segments(""))
	}

	// Pre-2.5: ERR-1 carries the location and code too.
	old, _ := hl7.Parse([]byte("MSH|^~\\&|A|B|C|D|20240101||ORU^R01|X|P|2.3\rPID|1\r"))
	ack, _ = hl7.Parse(hl7.BuildACK(old, hl7.AckReject, []*hl7.ParseError{{Segment: "OBR", SegIndex: 3, Field: 25, Code: "101", Msg: "m"}}, fixedNow))
	if ack.Get("ERR-1-1") != "OBR" || ack.Get("ERR-1-3") != "25" || ack.Get("ERR-1-4-1") != "101" {
		t.Errorf("v2.3 ERR-1 wrong: %q", ack.Segment("ERR").Field(1).Raw())
	}
}

func TestSplitBatch(t *testing.T) {
	b, err := hl7.SplitBatch(hl7test.Read(t, "batch/pyhl7-sample_file1.hl7"))
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Messages) != 3 || !strings.HasPrefix(string(b.Header), "FHS") {
		t.Fatalf("got %d messages, header %q", len(b.Messages), b.Header)
	}
	ids := []string{}
	for _, raw := range b.Messages {
		m, err := hl7.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ControlID())
	}
	if diff := cmp.Diff([]string{"12334456778890", "12334456778891", "12334456778890"}, ids); diff != "" {
		t.Error(diff)
	}
	_, err = hl7.SplitBatch([]byte("MSH|^~\\&|A\rBTS|1\r"))
	assertErr(t, err, &hl7.ParseError{Segment: "BTS", SegIndex: 2, Code: "100"})
}
