package log

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// New returns a JSON logger writing to w at the given level, through the
// redacting handler, with a "service" attribute set to service.
func New(w io.Writer, level slog.Level, service string) *slog.Logger {
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})
	return slog.New(NewRedactingHandler(h)).With("service", service)
}

// ParseLevel parses "debug", "info", "warn" or "error", ignoring case, and
// returns an error for anything else.
func ParseLevel(s string) (slog.Level, error) {
	switch {
	case strings.EqualFold(s, "debug"):
		return slog.LevelDebug, nil
	case strings.EqualFold(s, "info"):
		return slog.LevelInfo, nil
	case strings.EqualFold(s, "warn"):
		return slog.LevelWarn, nil
	case strings.EqualFold(s, "error"):
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("unknown log level %q (want debug, info, warn or error)", s)
}
