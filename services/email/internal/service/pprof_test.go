package service_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/carenotify/carenotify/services/email/internal/smtptest"
)

func TestPprofOnlyOnItsOwnListener(t *testing.T) {
	h := setup(t, smtptest.Options{CA: smtptest.NewCA(t)})
	h.cfg.PprofListener = listen(t)
	h.run(t)
	pprofURL := "http://" + h.cfg.PprofListener.Addr().String() + "/debug/pprof/"
	if body := httpGet(t, pprofURL); !strings.Contains(body, "goroutine") {
		t.Errorf("GET %s lists no profiles:\n%.300s", pprofURL, body)
	}
	resp, err := http.Get("http://" + h.cfg.HTTPAddr + "/debug/pprof/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /debug/pprof/ on EMAIL_HTTP_ADDR = %d, want 404", resp.StatusCode)
	}
}

func TestPprofOffByDefault(t *testing.T) {
	h := start(t, smtptest.Options{CA: smtptest.NewCA(t)})
	if h.cfg.PprofAddr != "" || h.cfg.PprofListener != nil {
		t.Fatalf("EMAIL_PPROF_ADDR defaults to %q, want off", h.cfg.PprofAddr)
	}
	if !strings.Contains(h.logs.String(), `"msg":"email started"`) || strings.Contains(h.logs.String(), "pprof listener started") {
		t.Error("a pprof listener started without EMAIL_PPROF_ADDR")
	}
}
