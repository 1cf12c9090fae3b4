// Package adminauth authenticates callers of the journey service's admin
// API with bearer tokens and says which roles they hold. Tokens are
// configured by their SHA-256 only (a file, JOURNEY_ADMIN_TOKENS_FILE,
// and/or the variable JOURNEY_ADMIN_TOKENS), one per line:
//
//	# principal  roles                        token hash
//	alice        viewer,editor                sha256:9f86d081884c7d65...
//	ops-bot      viewer                       sha256:...
//
// A token is a random secret of at least 32 bytes (carenotifyctl admin
// token generate makes one and prints its line), so one SHA-256 is enough
// to keep it from being read back from the file. Roles: viewer (list,
// trace, consent get, preview, simulate, validate, history), editor
// (apply journeys), consent-admin (consent get and set). Principals are
// ids that appear in the audit trail: letters, digits and ._-, at most
// 64, no '@'.
package adminauth
