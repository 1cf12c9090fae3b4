package server

import (
	"context"
	"log/slog"
	"net/http"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/carenotify/carenotify/pkg/audit"
	journeyv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/journey/v1"
	"github.com/carenotify/carenotify/services/journey/internal/adminauth"
	"github.com/carenotify/carenotify/services/journey/internal/app"
)

// methodRoles says which roles may call each AdminService method (any
// one of them suffices). A method not listed is refused to everyone, so
// a method added to the proto is closed until it is listed here.
var methodRoles = map[string][]adminauth.Role{
	"ListJourneys": {adminauth.RoleViewer, adminauth.RoleEditor, adminauth.RoleConsentAdmin},
	"Trace":        {adminauth.RoleViewer},
	"GetConsent":   {adminauth.RoleViewer, adminauth.RoleConsentAdmin},
	"SetConsent":   {adminauth.RoleConsentAdmin},
	// Rewrites every consent record of a tenant from the CONSENT stream.
	"RebuildConsent": {adminauth.RoleConsentAdmin},
	// Validating changes nothing; editors validate before they apply.
	"ValidateJourney": {adminauth.RoleViewer, adminauth.RoleEditor},
	"Simulate":        {adminauth.RoleViewer, adminauth.RoleEditor},
	// Changing what runs is for editors; its history anyone may read.
	"ApplyJourney":      {adminauth.RoleEditor},
	"RollbackJourney":   {adminauth.RoleEditor},
	"RemoveJourney":     {adminauth.RoleEditor},
	"GetJourneyHistory": {adminauth.RoleViewer, adminauth.RoleEditor},
}

// adminPrefix is the full method name prefix of AdminService.
var adminPrefix = "/" + journeyv1.AdminService_ServiceDesc.ServiceName + "/"

// Auth authenticates and authorises admin API calls by bearer token.
type Auth struct {
	tokens *adminauth.Tokens
	logger *slog.Logger
}

// NewAuth returns the admin API's authentication over tokens (nil or
// empty: every call is refused).
func NewAuth(tokens *adminauth.Tokens, logger *slog.Logger) *Auth {
	return &Auth{tokens: tokens, logger: logger}
}

// authorize checks the "Bearer <token>" in header for method and returns
// ctx naming its principal as the actor ([app.WithActor]). Errors are
// gRPC statuses: UNAUTHENTICATED without a known token, PERMISSION_DENIED
// without a role the method needs. They never quote the token.
func (a *Auth) authorize(ctx context.Context, method, header string) (context.Context, error) {
	if a.tokens == nil || a.tokens.Len() == 0 {
		return nil, status.Error(codes.Unauthenticated,
			"the journey admin API has no tokens configured (JOURNEY_ADMIN_TOKENS_FILE or JOURNEY_ADMIN_TOKENS), so it refuses every call")
	}
	token, ok := strings.CutPrefix(header, "Bearer ")
	if !ok || strings.TrimSpace(token) == "" {
		return nil, status.Error(codes.Unauthenticated,
			"this call needs a bearer token: send the header 'authorization: Bearer <token>' (carenotifyctl --token or CARENOTIFY_TOKEN)")
	}
	p, err := a.tokens.Authenticate(strings.TrimSpace(token))
	if err != nil {
		a.logger.WarnContext(ctx, "admin API call with an unknown token", "method", method)
		return nil, status.Error(codes.Unauthenticated, "the bearer token is not one this journey service knows (check it, or ask for a new one)")
	}
	need := methodRoles[method]
	for _, r := range need {
		if p.Has(r) {
			return app.WithActor(ctx, audit.Actor{Type: audit.ActorPerson, ID: p.ID}), nil
		}
	}
	a.logger.WarnContext(ctx, "admin API call denied", "method", method, "principal", p.ID)
	if len(need) == 0 {
		return nil, status.Errorf(codes.PermissionDenied, "%s may not call %s: no role allows it", p.ID, method)
	}
	return nil, status.Errorf(codes.PermissionDenied, "%s may not call %s: it needs the role %s, and the token has %s",
		p.ID, method, joinRoles(need, " or "), joinRoles(p.Roles, ", "))
}

func joinRoles(rs []adminauth.Role, sep string) string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = string(r)
	}
	if len(out) == 0 {
		return "no role"
	}
	return strings.Join(out, sep)
}

// UnaryInterceptor authorises every AdminService call; other services on
// the server (health, reflection) pass.
func (a *Auth) UnaryInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		method, ok := strings.CutPrefix(info.FullMethod, adminPrefix)
		if !ok {
			return handler(ctx, req)
		}
		var header string
		if md, ok := metadata.FromIncomingContext(ctx); ok {
			if v := md.Get("authorization"); len(v) > 0 {
				header = v[0]
			}
		}
		actx, err := a.authorize(ctx, method, header)
		if err != nil {
			return nil, err
		}
		return handler(actx, req)
	}
}

// HTTP wraps the handler of an HTTP route that does what method does:
// it runs only for a token allowed to call method, with its principal
// in the request's context. A refusal is the JSON google.rpc.Status, 401
// (with WWW-Authenticate) or 403.
func (a *Auth) HTTP(method string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, err := a.authorize(r.Context(), method, r.Header.Get("Authorization"))
		if err != nil {
			if status.Code(err) == codes.Unauthenticated {
				w.Header().Set("WWW-Authenticate", `Bearer realm="carenotify-journey-admin"`)
			}
			writeJSON(w, nil, err)
			return
		}
		h(w, r.WithContext(ctx))
	}
}
