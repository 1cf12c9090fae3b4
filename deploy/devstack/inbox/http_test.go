package inbox

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const xssSubject = `<script>alert("x")</script> Rappel`

// seeded returns an inbox with two messages, "tls1" (older, over TLS) and
// "plain2" (newer, without TLS, hostile subject and body).
func seeded() *Inbox {
	in := New()
	in.add(Message{
		ID: "tls1", Kind: KindEmail, ReceivedAt: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC),
		From: testFrom, To: []string{"a@example.com"}, Subject: "Rappel: rendez-vous à 9h",
		Text: "Bonjour", TLS: true, TLSVersion: "TLS 1.3",
		Raw: []byte("Subject: Rappel\r\n\r\nBonjour\r\n"),
	})
	in.add(Message{
		ID: "plain2", Kind: KindEmail, ReceivedAt: time.Date(2026, 3, 2, 9, 5, 0, 0, time.UTC),
		From: testFrom, To: []string{"B@example.com", "c@example.com"}, Subject: xssSubject,
		Text:    "</pre><script>alert(1)</script>",
		HTML:    `<p onclick="x()">Bonjour "Jeanne" &amp; co</p><script>alert(2)</script>`,
		Headers: map[string][]string{"Message-Id": {"<plain2@clinic.example.org>"}, "X-Hostile": {"<b>bold</b>"}},
	})
	return in
}

func get(t *testing.T, h http.Handler, method, target string) *http.Response {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	return rec.Result()
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRoutes(t *testing.T) {
	type give struct {
		method string
		target string
	}
	type want struct {
		Status      int
		ContentType string
	}
	tests := []struct {
		name string
		give give
		want want
	}{
		{name: "index", give: give{"GET", "/"}, want: want{200, "text/html; charset=utf-8"}},
		{name: "message", give: give{"GET", "/messages/tls1"}, want: want{200, "text/html; charset=utf-8"}},
		{name: "raw message", give: give{"GET", "/messages/tls1/raw"}, want: want{200, "text/plain; charset=utf-8"}},
		{name: "unknown message", give: give{"GET", "/messages/nope"}, want: want{404, "text/plain; charset=utf-8"}},
		{name: "unknown raw message", give: give{"GET", "/messages/nope/raw"}, want: want{404, "text/plain; charset=utf-8"}},
		{name: "api list", give: give{"GET", "/api/messages"}, want: want{200, "application/json"}},
		{name: "health", give: give{"GET", "/healthz"}, want: want{200, "text/plain; charset=utf-8"}},
		{name: "unknown path", give: give{"GET", "/nope"}, want: want{404, "text/plain; charset=utf-8"}},
		{name: "wrong method", give: give{"POST", "/api/messages"}, want: want{405, "text/plain; charset=utf-8"}},
	}
	h := seeded().Handler()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := get(t, h, tt.give.method, tt.give.target)
			got := want{resp.StatusCode, resp.Header.Get("Content-Type")}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("response (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff("no-store", resp.Header.Get("Cache-Control")); diff != "" {
				t.Errorf("Cache-Control (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHealthz(t *testing.T) {
	if diff := cmp.Diff("ok", readBody(t, get(t, New().Handler(), "GET", "/healthz"))); diff != "" {
		t.Errorf("body (-want +got):\n%s", diff)
	}
}

func TestAPIList(t *testing.T) {
	tests := []struct {
		name string
		give string // query
		want []string
	}{
		{name: "all, newest first", give: "", want: []string{"plain2", "tls1"}},
		{name: "to one recipient", give: "?to=a@example.com", want: []string{"tls1"}},
		{name: "to matches any recipient, ignoring case", give: "?to=b@example.com", want: []string{"plain2"}},
		{name: "to nobody", give: "?to=nobody@example.com", want: []string{}},
	}
	h := seeded().Handler()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got struct{ Messages []Message }
			if err := json.Unmarshal([]byte(readBody(t, get(t, h, "GET", "/api/messages"+tt.give))), &got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, ids(got.Messages)); diff != "" {
				t.Errorf("ids (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAPIJSONShape(t *testing.T) {
	in := New()
	in.add(Message{
		ID: "m1", Kind: KindEmail, ReceivedAt: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC),
		From: testFrom, To: []string{"a@example.com"}, Subject: "s", Text: "t", HTML: "h",
		Headers: map[string][]string{"Message-Id": {"<m1@x>"}}, TLS: true, TLSVersion: "TLS 1.3",
		Size: 42, Raw: []byte("raw"),
	})
	want := `{"messages":[{"id":"m1","kind":"email","receivedAt":"2026-03-02T09:00:00Z",` +
		`"from":"noreply@clinic.example.org","to":["a@example.com"],"subject":"s","text":"t","html":"h",` +
		`"headers":{"Message-Id":["\u003cm1@x\u003e"]},"tls":true,"tlsVersion":"TLS 1.3",` +
		`"encryption":"","dkim":"","dkimDomain":"","delivery":null,"size":42}]}`
	if diff := cmp.Diff(want, readBody(t, get(t, in.Handler(), "GET", "/api/messages"))); diff != "" {
		t.Errorf("body (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(`{"messages":[]}`, readBody(t, get(t, New().Handler(), "GET", "/api/messages"))); diff != "" {
		t.Errorf("empty body (-want +got):\n%s", diff)
	}
}

func TestAPIDelete(t *testing.T) {
	in := seeded()
	resp := get(t, in.Handler(), "DELETE", "/api/messages")
	if diff := cmp.Diff(http.StatusNoContent, resp.StatusCode); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{}, ids(in.Messages())); diff != "" {
		t.Errorf("ids after DELETE (-want +got):\n%s", diff)
	}
}

func TestIndexPage(t *testing.T) {
	body := readBody(t, get(t, seeded().Handler(), "GET", "/"))
	for _, want := range []string{
		"<title>carenotify dev inbox</title>",
		`<meta http-equiv="refresh" content="5">`,
		"Development inbox: messages here never left this machine.",
		`<a href="messages/plain2">&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; Rappel</a>`,
		`<a href="messages/tls1">Rappel: rendez-vous à 9h</a>`,
		"<td>B@example.com, c@example.com</td>",
		"yes, TLS 1.3",
		">no</td>",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "<script") {
		t.Errorf("page contains an unescaped script tag:\n%s", body)
	}
	if strings.Index(body, "messages/plain2") > strings.Index(body, "messages/tls1") {
		t.Error("messages are not listed newest first")
	}
}

func TestMessagePage(t *testing.T) {
	resp := get(t, seeded().Handler(), "GET", "/messages/plain2")
	body := readBody(t, resp)
	for _, want := range []string{
		"<title>&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; Rappel - carenotify dev inbox</title>",
		"<pre>&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;</pre>",
		`<iframe sandbox srcdoc="&lt;p onclick=&#34;x()&#34;&gt;Bonjour &#34;Jeanne&#34; &amp;amp; co&lt;/p&gt;&lt;script&gt;alert(2)&lt;/script&gt;"`,
		"<tr><th>Message-Id</th><td>&lt;plain2@clinic.example.org&gt;</td></tr>",
		"<tr><th>X-Hostile</th><td>&lt;b&gt;bold&lt;/b&gt;</td></tr>",
		`<a href="plain2/raw">raw</a>`,
		"Development inbox: messages here never left this machine.",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "<script") {
		t.Errorf("page contains an unescaped script tag:\n%s", body)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("Content-Security-Policy = %q, want scripts blocked", csp)
	}
}

func TestRawMessage(t *testing.T) {
	got := readBody(t, get(t, seeded().Handler(), "GET", "/messages/tls1/raw"))
	if diff := cmp.Diff("Subject: Rappel\r\n\r\nBonjour\r\n", got); diff != "" {
		t.Errorf("body (-want +got):\n%s", diff)
	}
}
