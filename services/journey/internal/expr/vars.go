package expr

import (
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
)

// VarsOf returns what expressions see of ev, at now.
func VarsOf(ev *eventsv1.ClinicalEvent, now time.Time) Vars {
	at := timeOf(ev.GetOccurredAt())
	if at.IsZero() {
		at = timeOf(ev.GetReceivedAt())
	}
	if at.IsZero() {
		at = now
	}
	p := ev.GetPatient()
	v := Vars{
		Event: Event{
			Kind: ev.GetKind(), Action: ev.GetAction(), OccurredAt: timeOf(ev.GetOccurredAt()), Subject: ev.GetSubjectRef(),
		},
		Patient: Patient{
			Age: Age(p.GetBirthDate(), at), Language: p.GetLanguage(),
			HasEmail: anyText(p.GetEmails()), HasPhone: anyText(p.GetPhones()),
		},
		Now: now.UTC(),
	}
	if a := ev.GetAppointment(); a != nil {
		v.Event.Appointment = Appointment{
			Status: a.GetStatus(), Start: timeOf(a.GetStart()), End: timeOf(a.GetEnd()), ServiceType: a.GetServiceType(),
		}
	}
	return v
}

// Age is the age in whole years at time at of someone born on birthDate
// (YYYY-MM-DD, YYYY-MM or YYYY), or -1 when birthDate is not one of those
// or lies after at. A partial date gives the youngest age possible.
func Age(birthDate string, at time.Time) int {
	parts := strings.Split(birthDate, "-")
	if len(parts) == 0 || len(parts) > 3 || len(parts[0]) != 4 {
		return -1
	}
	nums := make([]int, len(parts))
	for i, s := range parts {
		n, err := strconv.Atoi(s)
		if err != nil || (i > 0 && len(s) != 2) {
			return -1
		}
		nums[i] = n
	}
	year, month, day := nums[0], 12, 31
	if len(nums) > 1 {
		month = nums[1]
		if month < 1 || month > 12 {
			return -1
		}
		day = time.Date(year, time.Month(month)+1, 0, 0, 0, 0, 0, time.UTC).Day() // last day of the month
	}
	if len(nums) > 2 {
		day = nums[2]
		if day < 1 || day > time.Date(year, time.Month(month)+1, 0, 0, 0, 0, 0, time.UTC).Day() {
			return -1
		}
	}
	at = at.UTC()
	age := at.Year() - year
	if int(at.Month()) < month || (int(at.Month()) == month && at.Day() < day) {
		age--
	}
	if age < 0 {
		return -1
	}
	return age
}

func anyText(ss []string) bool {
	for _, s := range ss {
		if strings.TrimSpace(s) != "" {
			return true
		}
	}
	return false
}

func timeOf(ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	return ts.AsTime()
}
