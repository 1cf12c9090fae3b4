package hl7map

import (
	"strings"
	"time"

	"github.com/carenotify/carenotify/pkg/hl7"
	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
)

// readPatient reads the patient from PID: identifiers (PID-3, CX-1 with
// the assigning authority CX-4), the legal or first name (PID-5), birth
// date (PID-7), home phone numbers and email addresses (PID-13) and
// language (PID-15). The first PID-3 identifier is the patient's id.
func readPatient(m *hl7.Message, loc *time.Location) (*eventsv1.Patient, error) {
	pid := m.Segment("PID")
	if pid == nil {
		return nil, missingSegment("PID")
	}
	p := &eventsv1.Patient{}
	for _, rep := range pid.Field(3).Reps() {
		value := strings.TrimSpace(rep.Comp(1).String())
		if value == "" {
			continue
		}
		system := strings.TrimSpace(rep.Comp(4).Sub(1).String())
		if system == "" {
			system = strings.TrimSpace(rep.Comp(4).Sub(2).String())
		}
		p.Identifiers = append(p.Identifiers, &eventsv1.Identifier{System: system, Value: value})
	}
	if len(p.Identifiers) == 0 {
		// HL7 v2.3 and earlier senders sometimes put the id in PID-2.
		if v := strings.TrimSpace(pid.Field(2).Comp(1).String()); v != "" {
			p.Identifiers = append(p.Identifiers, &eventsv1.Identifier{System: strings.TrimSpace(pid.Field(2).Comp(4).Sub(1).String()), Value: v})
		}
	}
	if len(p.Identifiers) == 0 {
		return nil, segErr(pid, "PID", 3, hl7.CodeRequiredFieldMissing, "patient identifier list missing")
	}
	p.Id = p.Identifiers[0].GetValue()

	names := pid.Field(5).Reps()
	if len(names) > 0 {
		name := names[0]
		for _, n := range names {
			if strings.EqualFold(strings.TrimSpace(n.Comp(7).String()), "L") {
				name = n
				break
			}
		}
		p.FamilyName = strings.TrimSpace(name.Comp(1).Sub(1).String())
		for _, c := range []hl7.Value{name.Comp(2), name.Comp(3)} {
			if s := strings.TrimSpace(c.String()); s != "" {
				p.GivenNames = append(p.GivenNames, s)
			}
		}
	}

	if dob := strings.TrimSpace(pid.Field(7).Comp(1).String()); dob != "" {
		ts, err := hl7.ParseTS(dob, loc)
		if err != nil {
			return nil, segErr(pid, "PID", 7, hl7.CodeDataType, "birth date is not an HL7 date")
		}
		p.BirthDate = ts.Date()
	}

	var mobiles, others []string
	for _, x := range pid.Field(13).Reps() {
		use := strings.ToUpper(strings.TrimSpace(x.Comp(2).String()))
		equip := strings.ToUpper(strings.TrimSpace(x.Comp(3).String()))
		if email := strings.TrimSpace(x.Comp(4).String()); email != "" && (use == "NET" || equip == "INTERNET" || equip == "X.400" || strings.Contains(email, "@")) {
			p.Emails = append(p.Emails, email)
			continue
		}
		phone := phoneOf(x)
		if phone == "" {
			continue
		}
		if equip == "CP" {
			mobiles = append(mobiles, phone)
		} else {
			others = append(others, phone)
		}
	}
	p.Phones = append(mobiles, others...)
	p.Language = language(pid.Field(15))
	return p, nil
}

// phoneOf returns an XTN's number: XTN-12 (unformatted), XTN-1 (the
// pre-v2.5 text), or +country area local xext from XTN-5..8.
func phoneOf(x hl7.Value) string {
	if s := strings.TrimSpace(x.Comp(12).String()); s != "" {
		return s
	}
	if s := strings.TrimSpace(x.Comp(1).String()); s != "" {
		return s
	}
	country, area, local, ext := strings.TrimSpace(x.Comp(5).String()), strings.TrimSpace(x.Comp(6).String()),
		strings.TrimSpace(x.Comp(7).String()), strings.TrimSpace(x.Comp(8).String())
	if local == "" {
		return ""
	}
	s := local
	if area != "" {
		s = "(" + area + ") " + s
	}
	if country != "" {
		s = "+" + strings.TrimPrefix(country, "+") + " " + s
	}
	if ext != "" {
		s += " x" + ext
	}
	return s
}

// iso639 maps ISO 639-2 codes and English names that EHRs send in PID-15
// to BCP-47 primary tags.
var iso639 = map[string]string{
	"eng": "en", "english": "en", "spa": "es", "spanish": "es", "fra": "fr", "fre": "fr", "french": "fr",
	"deu": "de", "ger": "de", "german": "de", "ita": "it", "italian": "it", "por": "pt", "portuguese": "pt",
	"zho": "zh", "chi": "zh", "chinese": "zh", "vie": "vi", "vietnamese": "vi", "kor": "ko", "korean": "ko",
	"rus": "ru", "russian": "ru", "ara": "ar", "arabic": "ar", "jpn": "ja", "japanese": "ja", "pol": "pl",
	"polish": "pl", "hin": "hi", "hindi": "hi", "tgl": "tl", "tagalog": "tl", "nld": "nl", "dut": "nl",
	"dutch": "nl", "hat": "ht", "haitian": "ht", "fas": "fa", "per": "fa", "persian": "fa", "som": "so",
	"somali": "so", "ukr": "uk", "ukrainian": "uk",
}

// language turns PID-15 (CE/CWE) into a BCP-47 tag, or "" when it is not
// recognisable.
func language(v hl7.Value) string {
	for _, c := range []hl7.Value{v.Comp(1), v.Comp(2), v.Comp(4)} {
		s := strings.ToLower(strings.TrimSpace(c.String()))
		if s == "" {
			continue
		}
		s = strings.ReplaceAll(s, "_", "-")
		if tag, ok := iso639[s]; ok {
			return tag
		}
		primary, region, hasRegion := strings.Cut(s, "-")
		if t, ok := iso639[primary]; ok {
			primary = t
		}
		if len(primary) != 2 || !isLetters(primary) {
			continue
		}
		if hasRegion && (len(region) == 2 && isLetters(region)) {
			return primary + "-" + strings.ToUpper(region)
		}
		return primary
	}
	return ""
}

func isLetters(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 'a' || s[i] > 'z' {
			return false
		}
	}
	return true
}
