package server

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
)

// checkRate takes one request from the source's budget. A spent budget is
// 429 with Retry-After; an unreachable budget store is 503 (fail closed).
func (s *Server) checkRate(w http.ResponseWriter, r *http.Request, cred credential) error {
	if cred.limits.Rate <= 0 {
		return nil
	}
	if s.limiter == nil {
		return errLimiterUnavailable
	}
	ok, wait, err := s.limiter.Allow(r.Context(), cred.source.Tenant, cred.source.Name, cred.limits)
	switch {
	case err != nil:
		s.logger.ErrorContext(r.Context(), "rate limiter unavailable", "source", cred.source.Name, "err", err)
		return errLimiterUnavailable
	case ok:
		return nil
	}
	secs := max(1, int(math.Ceil(wait.Seconds())))
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	return &requestError{status: http.StatusTooManyRequests, code: "throttled", reason: "rate_limited",
		diagnostics: fmt.Sprintf("this source may send %d request(s) per %s (burst %d); retry after %d s",
			cred.limits.Rate, cred.limits.Period().String(), cred.limits.BurstSize(), secs)}
}

var errLimiterUnavailable = &requestError{status: http.StatusServiceUnavailable, code: "transient", reason: "rate_limiter_unavailable",
	diagnostics: "the receiver cannot check this source's rate limit right now; retry later"}
