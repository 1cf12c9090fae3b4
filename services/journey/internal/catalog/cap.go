package catalog

import (
	"strconv"
	"time"

	"go.yaml.in/yaml/v3"
)

// FrequencyCap bounds how many messages of a journey's purpose a patient
// gets: at most Max in any window of Per, counting every journey of that
// purpose.
type FrequencyCap struct {
	// Max is the most messages in a window, at least 1.
	Max int
	// Per is the window, 1h to [MaxCapWindow].
	Per time.Duration
}

// MaxCapWindow is the longest frequency cap window.
const MaxCapWindow = 31 * 24 * time.Hour

// frequencyCap parses frequency_cap: {max: 3, per: 24h}.
func (p *fileParser) frequencyCap(f field) *FrequencyCap {
	const example = `frequency_cap: {max: 3, per: 24h}`
	if f.value.Kind != yaml.MappingNode {
		p.addf(f.value.Line, "frequency_cap must be a group of fields such as %s", example)
		return nil
	}
	var (
		c          FrequencyCap
		have       = map[string]bool{}
		before     = len(p.problems)
		prefix     = "frequency_cap: "
		fieldNames = []string{"max", "per"}
	)
	for _, cf := range p.fields(f.value, prefix) {
		switch cf.name {
		case "max":
			have[cf.name] = true
			v, ok := p.scalar(cf, prefix)
			if !ok {
				continue
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 1000 {
				p.addf(cf.value.Line, "%smax %q must be a whole number of messages from 1 to 1000", prefix, v)
				continue
			}
			c.Max = n
		case "per":
			have[cf.name] = true
			v, ok := p.scalar(cf, prefix)
			if !ok {
				continue
			}
			d, err := time.ParseDuration(v)
			if err != nil || d < time.Hour || d > MaxCapWindow {
				p.addf(cf.value.Line, "%sper %q must be a duration from 1h to %dh (31 days), such as 24h or 168h", prefix, v, int(MaxCapWindow.Hours()))
				continue
			}
			c.Per = d
		default:
			p.unknownField(cf, prefix, fieldNames)
		}
	}
	for _, name := range fieldNames {
		if !have[name] {
			p.addf(f.value.Line, "%smissing %q (e.g. %s)", prefix, name, example)
		}
	}
	if len(p.problems) != before {
		return nil
	}
	return &c
}
