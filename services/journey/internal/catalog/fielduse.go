package catalog

import (
	"maps"
	"slices"
	"strings"
	"text/template/parse"
)

// fieldUse is one place a template part reads a field of the catalogue.
type fieldUse struct {
	field FieldInfo
	line  int    // in the part's text, 1-based
	as    string // how the template writes it, e.g. ".Appointment.Start"
}

// badPath is a field a template part reads that templates do not have.
type badPath struct {
	line int
	as   string
}

// value is what a template expression stands for as far as fields go: a
// path into the template data (empty: the whole data), or, when known is
// false, something else (a function's result, a literal).
type value struct {
	path  []string
	known bool
}

func (v value) with(fields ...string) value {
	if !v.known {
		return v
	}
	return value{path: slices.Concat(v.path, fields), known: true}
}

var root = value{known: true}

// useWalker finds every field a parsed template part reads, without
// running it, so that branches the sample data does not take count too.
// A field tested or printed is read; a group (.Appointment, .Patient)
// only tested for presence ({{with .Appointment}}, {{if .Patient}}) is
// not, but a group printed or handed to a function reads every field in it.
type useWalker struct {
	src   string                 // the part's text, for line numbers
	trees map[string]*parse.Tree // the part and the templates it defines
	uses  []fieldUse
	bad   []badPath
	depth int // of {{template}} calls, against recursion
}

// partUses returns the fields the part (src, parsed into trees, named
// name) reads and the unknown ones it tries to read.
func partUses(src, name string, trees map[string]*parse.Tree) ([]fieldUse, []badPath) {
	w := &useWalker{src: src, trees: trees}
	if t := trees[name]; t != nil && t.Root != nil {
		w.list(t.Root, root, map[string]value{"$": root})
	}
	return w.uses, w.bad
}

func (w *useWalker) line(n parse.Node) int {
	pos := min(int(n.Position()), len(w.src))
	return 1 + strings.Count(w.src[:pos], "\n")
}

func (w *useWalker) list(l *parse.ListNode, dot value, vars map[string]value) {
	if l == nil {
		return
	}
	for _, n := range l.Nodes {
		w.node(n, dot, vars)
	}
}

func (w *useWalker) node(n parse.Node, dot value, vars map[string]value) {
	switch n := n.(type) {
	case *parse.ActionNode:
		w.pipe(n.Pipe, dot, vars, len(n.Pipe.Decl) > 0)
	case *parse.IfNode:
		w.pipe(n.Pipe, dot, vars, true)
		w.list(n.List, dot, maps.Clone(vars))
		w.list(n.ElseList, dot, maps.Clone(vars))
	case *parse.WithNode:
		inner := maps.Clone(vars)
		v := w.pipe(n.Pipe, dot, inner, true)
		w.list(n.List, v, inner)
		w.list(n.ElseList, dot, maps.Clone(vars))
	case *parse.RangeNode:
		inner := maps.Clone(vars)
		v := w.pipe(n.Pipe, dot, inner, false)
		// The elements of a list belong to the field the list is.
		for i, d := range n.Pipe.Decl {
			if i == len(n.Pipe.Decl)-1 {
				inner[d.Ident[0]] = v
			} else {
				inner[d.Ident[0]] = value{}
			}
		}
		w.list(n.List, v, inner)
		w.list(n.ElseList, dot, maps.Clone(vars))
	case *parse.TemplateNode:
		v := value{}
		if n.Pipe != nil {
			// Handing a group on is no read: the called template's are.
			v = w.pipe(n.Pipe, dot, maps.Clone(vars), true)
		}
		if t := w.trees[n.Name]; t != nil && t.Root != nil && w.depth < 8 {
			w.depth++
			w.list(t.Root, v, map[string]value{"$": v})
			w.depth--
		}
	}
}

// pipe records the reads of a pipeline and returns its value. test says
// the value is only tested or assigned, not printed.
func (w *useWalker) pipe(p *parse.PipeNode, dot value, vars map[string]value, test bool) value {
	if p == nil {
		return value{}
	}
	v := value{}
	for _, c := range p.Cmds {
		// A value piped on is an argument of the next command.
		v = w.command(c, dot, vars, test && len(p.Cmds) == 1)
	}
	if len(p.Cmds) > 1 {
		v = value{}
	}
	for _, d := range p.Decl {
		vars[d.Ident[0]] = v
	}
	return v
}

// Functions that only test their arguments' truth: a group handed to them
// is a presence test, not a read of its fields.
var testFuncs = map[string]bool{"not": true, "and": true, "or": true}

func (w *useWalker) command(c *parse.CommandNode, dot value, vars map[string]value, test bool) value {
	if len(c.Args) == 1 {
		return w.arg(c.Args[0], dot, vars, test)
	}
	asTest := false
	if id, ok := c.Args[0].(*parse.IdentifierNode); ok && testFuncs[id.Ident] {
		asTest = true
	}
	for _, a := range c.Args {
		w.arg(a, dot, vars, asTest)
	}
	return value{}
}

func (w *useWalker) arg(n parse.Node, dot value, vars map[string]value, test bool) value {
	var v value
	switch n := n.(type) {
	case *parse.DotNode:
		v = dot
	case *parse.FieldNode:
		v = dot.with(n.Ident...)
	case *parse.VariableNode:
		base, ok := vars[n.Ident[0]]
		if !ok {
			return value{}
		}
		v = base.with(n.Ident[1:]...)
	case *parse.ChainNode:
		var base value
		if p, ok := n.Node.(*parse.PipeNode); ok {
			base = w.pipe(p, dot, maps.Clone(vars), true)
		} else {
			base = w.arg(n.Node, dot, vars, true)
		}
		v = base.with(n.Field...)
	case *parse.PipeNode:
		return w.pipe(n, dot, maps.Clone(vars), test)
	default: // functions, literals
		return value{}
	}
	w.read(v, test, n)
	return v
}

// read records that the template reads v at n.
func (w *useWalker) read(v value, test bool, n parse.Node) {
	if !v.known {
		return
	}
	if f, _, ok := fieldByPath(v.path); ok {
		w.uses = append(w.uses, fieldUse{field: f, line: w.line(n), as: n.String()})
		return
	}
	if group := fieldsUnder(v.path); len(group) > 0 {
		if !test {
			for _, f := range group {
				w.uses = append(w.uses, fieldUse{field: f, line: w.line(n), as: n.String()})
			}
		}
		return
	}
	w.bad = append(w.bad, badPath{line: w.line(n), as: "." + strings.Join(v.path, ".")})
}
