package twiliotest

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

func TestSignTwilioExample(t *testing.T) {
	params := url.Values{
		"CallSid": {"CA1234567890ABCDE"}, "Caller": {"+14158675310"}, "Digits": {"1234"},
		"From": {"+14158675310"}, "To": {"+18005551212"},
	}
	if got, want := Sign("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", params), "GvWf1cFY/Q7PnoempGyD5oXAezc="; got != want {
		t.Errorf("Sign() = %s, want %s", got, want)
	}
}

func post(t *testing.T, s *Server, account, user, pass string, form url.Values) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, s.URL()+"/2010-04-01/Accounts/"+account+"/Messages.json", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(user, pass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("answer is not JSON: %v", err)
	}
	return resp.StatusCode, body
}

func TestMessagesAPI(t *testing.T) {
	s, err := Start(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ok := url.Values{"To": {"+15550100001"}, "From": {"+15005550006"}, "Body": {"hello"}}
	tests := []struct {
		name       string
		account    string
		pass       string
		form       url.Values
		wantStatus int
		wantCode   float64
	}{
		{"bad token", DefaultAccountSID, "nope", ok, 401, 20003},
		{"other account", "AC99999999999999999999999999999999", DefaultAuthToken, ok, 401, 20003},
		{"no to", DefaultAccountSID, DefaultAuthToken, url.Values{"From": {"+15005550006"}, "Body": {"x"}}, 400, 21604},
		{"no from", DefaultAccountSID, DefaultAuthToken, url.Values{"To": {"+15550100001"}, "Body": {"x"}}, 400, 21603},
		{"no body", DefaultAccountSID, DefaultAuthToken, url.Values{"To": {"+15550100001"}, "From": {"+15005550006"}}, 400, 21602},
		{"bad to", DefaultAccountSID, DefaultAuthToken, url.Values{"To": {"555-0100"}, "From": {"+15005550006"}, "Body": {"x"}}, 400, 21211},
		{"too long", DefaultAccountSID, DefaultAuthToken, url.Values{"To": {"+15550100001"}, "From": {"+15005550006"}, "Body": {strings.Repeat("x", 1601)}}, 400, 21617},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			user := tt.account
			status, body := post(t, s, tt.account, user, tt.pass, tt.form)
			if status != tt.wantStatus || body["code"] != tt.wantCode || body["status"] != float64(tt.wantStatus) {
				t.Errorf("answer %d %v, want %d code %v", status, body, tt.wantStatus, tt.wantCode)
			}
			if !strings.HasPrefix(body["more_info"].(string), "https://www.twilio.com/docs/errors/") {
				t.Errorf("more_info = %v", body["more_info"])
			}
		})
	}
	if len(s.Messages()) != 0 {
		t.Fatal("a refused request was recorded")
	}

	status, body := post(t, s, DefaultAccountSID, DefaultAccountSID, DefaultAuthToken, ok)
	if status != 201 || body["status"] != "queued" || body["num_segments"] != "1" || body["direction"] != "outbound-api" {
		t.Errorf("answer %d %v", status, body)
	}
	if !regexp.MustCompile(`^SM[0-9a-f]{32}$`).MatchString(body["sid"].(string)) {
		t.Errorf("sid = %v", body["sid"])
	}
	s.Fail(Failure{Status: 429, Code: 20429, Count: 2})
	for range 2 {
		if status, body := post(t, s, DefaultAccountSID, DefaultAccountSID, DefaultAuthToken, ok); status != 429 || body["code"] != float64(20429) {
			t.Errorf("injected answer %d %v", status, body)
		}
	}
	s.Unsubscribe("+15550100001")
	if status, body := post(t, s, DefaultAccountSID, DefaultAccountSID, DefaultAuthToken, ok); status != 400 || body["code"] != float64(21610) {
		t.Errorf("unsubscribed answer %d %v", status, body)
	}
	if n := len(s.Messages()); n != 1 {
		t.Errorf("%d messages recorded, want 1", n)
	}
}
