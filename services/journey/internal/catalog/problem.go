package catalog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Problem is one thing wrong in a journey or template file.
type Problem struct {
	// File is the path of the file (the directory as configured joined
	// with the file name), or the directory when it cannot be read.
	File string
	// Line is the 1-based line the problem is on, or 0 when it concerns the
	// whole file.
	Line int
	// Column is the 1-based column on Line, when it is known (CEL
	// expressions written on one line), else 0.
	Column int
	// Message says what is wrong and, where it can, how to fix it.
	Message string
}

// String formats the problem as file:line: message.
func (p Problem) String() string {
	if p.Line > 0 && p.Column > 0 {
		return fmt.Sprintf("%s:%d:%d: %s", p.File, p.Line, p.Column, p.Message)
	}
	if p.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Message)
	}
	return fmt.Sprintf("%s: %s", p.File, p.Message)
}

// LoadError lists every problem found while loading journeys and templates.
type LoadError struct {
	// Problems in file order, then line order.
	Problems []Problem
}

// Error lists the problems, one a line.
func (e *LoadError) Error() string {
	var b strings.Builder
	if len(e.Problems) == 1 {
		b.WriteString("journeys and templates have 1 problem:")
	} else {
		fmt.Fprintf(&b, "journeys and templates have %d problems:", len(e.Problems))
	}
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}

// fileParser collects the problems of one file while walking its YAML nodes.
type fileParser struct {
	file     string
	problems []Problem
}

func (p *fileParser) addf(line int, format string, args ...any) {
	p.problems = append(p.problems, Problem{File: p.file, Line: line, Message: fmt.Sprintf(format, args...)})
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// document parses b as exactly one YAML document holding a mapping and
// returns that mapping node, or nil after recording why it could not.
func (p *fileParser) document(b []byte, what string) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.addf(0, "the file is empty; it should describe one %s", what)
		} else {
			p.yamlError(err)
		}
		return nil
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		p.addf(next.Line, "\"---\" starts a second YAML document; put one %s in each file", what)
		return nil
	case !errors.Is(err, io.EOF):
		p.yamlError(err)
		return nil
	}
	if len(doc.Content) == 0 {
		p.addf(0, "the file is empty; it should describe one %s", what)
		return nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		p.addf(root.Line, "a %s file must be a list of fields such as \"id: ...\", one a line", what)
		return nil
	}
	return root
}

// yamlError records a YAML syntax error with its line when the parser gave one.
func (p *fileParser) yamlError(err error) {
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[1])
		p.addf(line, "not valid YAML: %s", m[2])
		return
	}
	p.addf(0, "not valid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
}

// field is one key: value pair of a mapping.
type field struct {
	name  string
	key   *yaml.Node
	value *yaml.Node
}

// fields returns the pairs of mapping m, recording keys that are not plain
// text and keys given twice (which YAML parsers disagree about).
func (p *fileParser) fields(m *yaml.Node, prefix string) []field {
	seen := map[string]int{}
	var out []field
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			p.addf(k.Line, "%sfield names must be plain words such as \"id\"", prefix)
			continue
		}
		if first, ok := seen[k.Value]; ok {
			p.addf(k.Line, "%s%q is given twice (first on line %d)", prefix, k.Value, first)
			continue
		}
		seen[k.Value] = k.Line
		out = append(out, field{name: k.Value, key: k, value: v})
	}
	return out
}

// scalar returns the text of a single-value node. Null ("~" or nothing)
// is the empty string. It records a problem and returns false for lists,
// mappings and aliases.
func (p *fileParser) scalar(f field, prefix string) (string, bool) {
	switch f.value.Kind {
	case yaml.ScalarNode:
		if f.value.Tag == "!!null" {
			return "", true
		}
		return f.value.Value, true
	case yaml.AliasNode:
		p.addf(f.value.Line, "%s%q: anchors and aliases (*name) are not supported; write the value out", prefix, f.name)
	default:
		p.addf(f.value.Line, "%s%q must be a single value, not a list or a group of fields", prefix, f.name)
	}
	return "", false
}

// unknownField records a field the format does not have, suggesting the
// closest known one.
func (p *fileParser) unknownField(f field, prefix string, known []string) {
	if best := closest(f.name, known); best != "" {
		p.addf(f.key.Line, "%sunknown field %q (did you mean %q?)", prefix, f.name, best)
		return
	}
	p.addf(f.key.Line, "%sunknown field %q (known fields: %s)", prefix, f.name, strings.Join(known, ", "))
}

// closest returns the word in known nearest to s when it is at most two
// edits away, or "".
func closest(s string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if d := editDistance(s, k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
