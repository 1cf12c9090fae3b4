package catalog

import (
	"errors"
	"time"

	"go.yaml.in/yaml/v3"
)

// QuietHours is a daily window, in the tenant's time zone, in which a
// journey sends nothing: a send step that falls inside it waits until the
// window ends, unless the step is critical. Start and End are minutes
// after midnight; Start > End is a window across midnight (21:00–08:00).
type QuietHours struct {
	Start, End int
}

// Contains reports whether t (in its own location) is inside the window:
// from Start inclusive to End exclusive.
func (q QuietHours) Contains(t time.Time) bool {
	m := t.Hour()*60 + t.Minute()
	if q.Start < q.End {
		return m >= q.Start && m < q.End
	}
	return m >= q.Start || m < q.End
}

// EndAfter returns when the window that contains t ends, in t's location, or
// t itself when t is outside the window. Across a daylight-saving change
// the wall-clock end time is kept (time.Date normalizes a missing hour).
func (q QuietHours) EndAfter(t time.Time) time.Time {
	if !q.Contains(t) {
		return t
	}
	y, mo, d := t.Date()
	m := t.Hour()*60 + t.Minute()
	if q.Start > q.End && m >= q.Start {
		d++ // the window ends tomorrow morning
	}
	return time.Date(y, mo, d, q.End/60, q.End%60, 0, 0, t.Location())
}

// quietHours parses quiet_hours: {start: "21:00", end: "08:00"}.
func (p *fileParser) quietHours(f field) *QuietHours {
	const example = `quiet_hours: {start: "21:00", end: "08:00"}`
	if f.value.Kind != yaml.MappingNode {
		p.addf(f.value.Line, "quiet_hours must be a group of fields such as %s", example)
		return nil
	}
	var (
		q          QuietHours
		have       = map[string]bool{}
		before     = len(p.problems)
		prefix     = "quiet_hours: "
		fieldNames = []string{"start", "end"}
	)
	for _, qf := range p.fields(f.value, prefix) {
		switch qf.name {
		case "start", "end":
			have[qf.name] = true
			v, ok := p.scalar(qf, prefix)
			if !ok {
				continue
			}
			m, err := clockMinutes(v)
			if err != nil {
				p.addf(qf.value.Line, "%s%s %q is not a time of day such as \"21:00\" (24-hour HH:MM)", prefix, qf.name, v)
				continue
			}
			if qf.name == "start" {
				q.Start = m
			} else {
				q.End = m
			}
		default:
			p.unknownField(qf, prefix, fieldNames)
		}
	}
	for _, name := range fieldNames {
		if !have[name] {
			p.addf(f.value.Line, "%smissing %q (e.g. %s)", prefix, name, example)
		}
	}
	if len(p.problems) != before {
		return nil
	}
	if q.Start == q.End {
		p.addf(f.value.Line, "%sstart and end are the same time: the window would be empty or the whole day", prefix)
		return nil
	}
	return &q
}

// clockMinutes parses "HH:MM" (24-hour) into minutes after midnight.
func clockMinutes(s string) (int, error) {
	if len(s) != 5 || s[2] != ':' {
		return 0, errors.New("not HH:MM")
	}
	for _, i := range []int{0, 1, 3, 4} {
		if s[i] < '0' || s[i] > '9' {
			return 0, errors.New("not HH:MM")
		}
	}
	h, m := int(s[0]-'0')*10+int(s[1]-'0'), int(s[3]-'0')*10+int(s[4]-'0')
	if h > 23 || m > 59 {
		return 0, errors.New("not HH:MM")
	}
	return h*60 + m, nil
}
