package server

import (
	"net/http"
	"net/http/pprof"
)

// Pprof returns the net/http/pprof handlers under /debug/pprof/, for the
// profiling listener (EMAIL_PPROF_ADDR), which is off by default and
// separate from EMAIL_HTTP_ADDR: profiles show code paths and memory, never
// meant for the network that reaches /u/ or the webhooks. Profiles hold no
// message content by design, but a heap profile can hold bytes of messages
// in flight: expose the listener on loopback only.
func Pprof() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
