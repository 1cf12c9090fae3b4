package fhirclient

import (
	"net/netip"
	"testing"
)

func TestPublicAddr(t *testing.T) {
	tests := []struct {
		give string
		want bool
	}{
		{give: "93.184.216.34", want: true},
		{give: "2606:2800:220:1:248:1893:25c8:1946", want: true},
		{give: "127.0.0.1", want: false},
		{give: "::1", want: false},
		{give: "10.1.2.3", want: false},
		{give: "172.16.0.1", want: false},
		{give: "192.168.1.1", want: false},
		{give: "169.254.169.254", want: false},
		{give: "fe80::1", want: false},
		{give: "fd00::1", want: false},
		{give: "100.64.0.1", want: false},
		{give: "0.0.0.0", want: false},
		{give: "::ffff:127.0.0.1", want: false},
		{give: "224.0.0.1", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			if got := publicAddr(netip.MustParseAddr(tt.give)); got != tt.want {
				t.Errorf("publicAddr(%s) = %v, want %v", tt.give, got, tt.want)
			}
		})
	}
}

func TestPath(t *testing.T) {
	c := &Client{base: "https://ehr.example/fhir"}
	tests := []struct {
		name, give, want string
		wantErr          error
	}{
		{name: "relative", give: "Appointment/123", want: "Appointment/123"},
		{name: "absolute below base", give: "https://ehr.example/fhir/Appointment/a-1.2", want: "Appointment/a-1.2"},
		{name: "versioned", give: "Appointment/123/_history/4", want: "Appointment/123/_history/4"},
		{name: "other host", give: "https://evil.example/fhir/Appointment/123", wantErr: ErrForeignReference},
		{name: "base prefix trick", give: "https://ehr.example/fhirx/Appointment/123", wantErr: ErrForeignReference},
		{name: "userinfo trick", give: "https://ehr.example/fhir@evil.example/Appointment/1", wantErr: ErrForeignReference},
		{name: "dot segments", give: "Appointment/../../admin", wantErr: ErrBadReference},
		{name: "dot id", give: "Appointment/..", wantErr: ErrBadReference},
		{name: "query", give: "Appointment?identifier=x", wantErr: ErrBadReference},
		{name: "urn", give: "urn:uuid:1234", wantErr: ErrBadReference},
		{name: "contained", give: "#p1", wantErr: ErrBadReference},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.Path(tt.give)
			if err != tt.wantErr || got != tt.want {
				t.Errorf("Path(%q) = %q, %v; want %q, %v", tt.give, got, err, tt.want, tt.wantErr)
			}
		})
	}
}
