package stack

import (
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"strconv"
)

// Dev credentials: the demo EHR source and its bearer token. They exist
// only in the development stack.
const (
	DemoSource = "demo"
	DemoTenant = "demo"
	DemoToken  = "demo-token"
	// DemoSMSSender is the demo tenant's SMS sender number (a Twilio
	// magic test number).
	DemoSMSSender = "+15005550006"
	// DevAdminToken is the journey admin API's bearer token in the
	// development stack (principal dev-admin, every role). Production
	// tokens come from `carenotifyctl admin token generate`.
	DevAdminToken = "dev-admin-token"
)

// serviceEnv returns each service's environment in the stack.
func serviceEnv(ports map[string]int, natsURL, redisURL, caFile, keysDir string, ak AuditKeys, root string) map[string][]string {
	addr := func(k string) string { return "127.0.0.1:" + strconv.Itoa(ports[k]) }
	common := func(prefix, name string) []string {
		vars := []string{
			prefix + "_HTTP_ADDR=" + addr(name+"-http"),
			prefix + "_NATS_URL=" + natsURL,
			prefix + "_LOG_LEVEL=info",
		}
		if name == "ingest" || name == "journey" || name == "email" || name == "sms" {
			vars = append(vars,
				prefix+"_KEYRING_DIR="+keysDir,
				prefix+"_AUDIT_PSEUDONYM_KEY_FILE="+ak.Pseudonym,
				prefix+"_AUDIT_SIGNING_KEY_FILE="+ak.Signing,
			)
		}
		if _, ok := ports[name+"-grpc"]; ok {
			vars = append(vars, prefix+"_GRPC_ADDR="+addr(name+"-grpc"))
		}
		return vars
	}
	return map[string][]string{
		"ingest": append(common("INGEST", "ingest"),
			// ingest stores only the token's hash (name=tenant:sha256:<hex>).
			"INGEST_SOURCES="+DemoSource+"="+DemoTenant+":"+demoTokenHash(),
			"INGEST_REDIS_URL="+redisURL,
			"INGEST_MLLP_ADDR="+addr("ingest-mllp"),
			"INGEST_MLLP_SOURCE="+DemoSource+"="+DemoTenant,
		),
		"journey": append(common("JOURNEY", "journey"),
			"JOURNEY_EMAIL_ADDR="+addr("email-grpc"),
			"JOURNEY_SMS_ADDR="+addr("sms-grpc"),
			"JOURNEY_REDIS_URL="+redisURL,
			"JOURNEY_JOURNEYS_DIR="+filepath.Join(root, "deploy", "examples", "journeys"),
			"JOURNEY_TEMPLATES_DIR="+filepath.Join(root, "deploy", "examples", "templates"),
			// journey, too, is given only the token's hash.
			"JOURNEY_ADMIN_TOKENS=dev-admin viewer,editor,consent-admin "+hashToken(DevAdminToken),
		),
		"email": append(common("EMAIL", "email"),
			"EMAIL_REDIS_URL="+redisURL,
			"EMAIL_SMTP_HOST=localhost",
			"EMAIL_SMTP_PORT="+strconv.Itoa(ports["inbox-smtp"]),
			"EMAIL_SMTP_CA_FILE="+caFile,
			"EMAIL_SMTP_TLS=required",
			"EMAIL_FROM=Carenotify Demo Clinic <noreply@carenotify.localhost>",
			// The default policy puts List-Unsubscribe on marketing only; the
			// sample policy offers it on every purpose so the sample
			// (treatment) journey shows one-click unsubscribe.
			"EMAIL_POLICY_FILE="+filepath.Join(root, "deploy", "examples", "email", "policy.json"),
		),
		"sms": append(common("SMS", "sms"),
			"SMS_REDIS_URL="+redisURL,
		),
		"forms": common("FORMS", "forms"),
	}
}

// demoTokenHash is the hash of DemoToken as ingest stores it
// (`ingest -hash-token` prints the same).
func demoTokenHash() string { return hashToken(DemoToken) }

// hashToken is "sha256:<hex>" of a bearer token, as ingest and journey
// are configured with.
func hashToken(token string) string {
	d := sha256.Sum256([]byte(token))
	return "sha256:" + hex.EncodeToString(d[:])
}
