package catalog

import (
	"fmt"
	"slices"
	"strings"

	"golang.org/x/text/language"
)

// DefaultLanguage is the deployment's default language when none is
// configured (JOURNEY_LANGUAGE).
const DefaultLanguage = "en"

// Languages says which language a tenant's messages fall back to when the
// patient's preferred language has no version of a template.
type Languages struct {
	// Default is the language of every tenant not in Tenants
	// ([DefaultLanguage] when empty).
	Default string
	// Tenants maps a tenant to its own default language.
	Tenants map[string]string
}

// For returns tenant's default language, canonical.
func (l Languages) For(tenant string) string {
	if v, ok := l.Tenants[tenant]; ok {
		return v
	}
	return l.Default
}

// canonical returns the canonical form of a configured language: "es-mx"
// → "es-MX".
func (l Languages) canonical() (Languages, error) {
	out := Languages{Tenants: map[string]string{}}
	if l.Default == "" {
		l.Default = DefaultLanguage
	}
	var err error
	if out.Default, err = CanonicalLanguage(l.Default); err != nil {
		return Languages{}, fmt.Errorf("default language: %w", err)
	}
	for tenant, v := range l.Tenants {
		c, err := CanonicalLanguage(v)
		if err != nil {
			return Languages{}, fmt.Errorf("language of tenant %s: %w", tenant, err)
		}
		out.Tenants[tenant] = c
	}
	return out, nil
}

// CanonicalLanguage returns the canonical BCP-47 form of tag ("ES_mx" →
// "es-MX", "spa" → "es"), or an error saying it is not a language tag.
// The error does not quote tag.
func CanonicalLanguage(tag string) (string, error) {
	if strings.TrimSpace(tag) == "" {
		return "", fmt.Errorf("empty language tag")
	}
	t, err := language.Parse(strings.ReplaceAll(strings.TrimSpace(tag), "_", "-"))
	if err != nil || t == language.Und {
		return "", fmt.Errorf("not a BCP-47 language tag such as \"en\" or \"es-MX\"")
	}
	return t.String(), nil
}

// LanguageChain returns the languages a message for a patient who
// prefers patient is looked up in, most specific first: the patient's tag
// and each shorter prefix of it (RFC 4647 lookup: "es-MX" → "es-MX",
// "es"), then the tenant's default language. A missing or unreadable
// patient tag leaves the tenant default only. No entry repeats.
func LanguageChain(patient, tenantDefault string) []string {
	var chain []string
	if c, err := CanonicalLanguage(patient); err == nil {
		subtags := strings.Split(c, "-")
		for n := len(subtags); n > 0; n-- {
			// A single-letter subtag ("x", "u") starts an extension or
			// private use: no tag ends with it, or starts with it.
			if len(subtags[n-1]) == 1 {
				continue
			}
			if len(subtags[0]) == 1 {
				break
			}
			chain = append(chain, strings.Join(subtags[:n], "-"))
		}
	}
	if !slices.Contains(chain, tenantDefault) {
		chain = append(chain, tenantDefault)
	}
	return chain
}

// templateFamily is one template id in every language it is written in.
type templateFamily struct {
	id        string
	channel   Channel
	languages map[string]*Template // by canonical language
}

// sortedLanguages returns the languages of f, sorted.
func (f *templateFamily) sortedLanguages() []string {
	out := make([]string, 0, len(f.languages))
	for l := range f.languages {
		out = append(out, l)
	}
	slices.Sort(out)
	return out
}

// selectLanguage returns the version of f for the first language of chain
// it has.
func (f *templateFamily) selectLanguage(chain []string) (*Template, bool) {
	for _, l := range chain {
		if t, ok := f.languages[l]; ok {
			return t, true
		}
	}
	return nil, false
}
