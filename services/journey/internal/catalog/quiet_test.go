package catalog_test

import (
	"testing"
	"time"

	"github.com/carenotify/carenotify/services/journey/internal/catalog"
)

func TestQuietHours(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	night := catalog.QuietHours{Start: 21 * 60, End: 8 * 60}
	lunch := catalog.QuietHours{Start: 12 * 60, End: 13 * 60}
	at := func(d, h, m int) time.Time { return time.Date(2031, time.March, d, h, m, 0, 0, ny) }
	tests := []struct {
		name string
		q    catalog.QuietHours
		give time.Time
		want time.Time // when the window ends; give when outside
	}{
		{name: "evening, before", q: night, give: at(3, 20, 59), want: at(3, 20, 59)},
		{name: "evening, start", q: night, give: at(3, 21, 0), want: at(4, 8, 0)},
		{name: "after midnight", q: night, give: at(4, 2, 30), want: at(4, 8, 0)},
		{name: "end is outside", q: night, give: at(4, 8, 0), want: at(4, 8, 0)},
		{name: "across the spring DST change", q: night, give: at(8, 23, 0), want: at(9, 8, 0)},
		{name: "same-day window", q: lunch, give: at(3, 12, 30), want: at(3, 13, 0)},
		{name: "same-day window, outside", q: lunch, give: at(3, 11, 0), want: at(3, 11, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.q.EndAfter(tt.give); !got.Equal(tt.want) {
				t.Errorf("EndAfter(%v) = %v, want %v", tt.give, got, tt.want)
			}
			if got, want := tt.q.Contains(tt.give), !tt.want.Equal(tt.give); got != want {
				t.Errorf("Contains(%v) = %t, want %t", tt.give, got, want)
			}
		})
	}
}
