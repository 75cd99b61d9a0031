package fakejira

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
)

// A tiny JQL evaluator: clauses "field op value" joined by AND, OR, NOT
// and parentheses, with a trailing ORDER BY ignored. Supported fields:
// key (issuekey), project, status, statusCategory, labels, assignee,
// issuetype (type), summary (~ only). Operators: = != ~ !~ in, not in,
// is, is not (EMPTY/NULL). Anything else is a 400, as real JIRA answers
// for a query it cannot parse.

type token struct {
	s      string
	quoted bool
}

func tokenize(q string) ([]token, error) {
	var out []token
	r := []rune(q)
	for i := 0; i < len(r); {
		c := r[i]
		switch {
		case unicode.IsSpace(c):
			i++
		case c == '(' || c == ')' || c == ',' || c == '=' || c == '~':
			out = append(out, token{s: string(c)})
			i++
		case c == '!' && i+1 < len(r) && (r[i+1] == '=' || r[i+1] == '~'):
			out = append(out, token{s: string(r[i : i+2])})
			i += 2
		case c == '"' || c == '\'':
			var b strings.Builder
			j := i + 1
			for ; j < len(r) && r[j] != c; j++ {
				if r[j] == '\\' && j+1 < len(r) {
					j++
				}
				b.WriteRune(r[j])
			}
			if j >= len(r) {
				return nil, fmt.Errorf("unterminated string")
			}
			out = append(out, token{s: b.String(), quoted: true})
			i = j + 1
		default:
			j := i
			for j < len(r) && !unicode.IsSpace(r[j]) && !strings.ContainsRune("()=,~!\"'", r[j]) {
				j++
			}
			if j == i {
				return nil, fmt.Errorf("unexpected character %q", c)
			}
			out = append(out, token{s: string(r[i:j])})
			i = j
		}
	}
	return out, nil
}

type pred func(f *Server, is *Issue) bool

type parser struct {
	toks []token
	pos  int
}

func (p *parser) peek() (token, bool) {
	if p.pos < len(p.toks) {
		return p.toks[p.pos], true
	}
	return token{}, false
}

func (p *parser) isWord(w string) bool {
	t, ok := p.peek()
	return ok && !t.quoted && strings.EqualFold(t.s, w)
}

func (p *parser) next() (token, error) {
	t, ok := p.peek()
	if !ok {
		return t, fmt.Errorf("unexpected end of query")
	}
	p.pos++
	return t, nil
}

func parseJQL(q string) (pred, error) {
	toks, err := tokenize(q)
	if err != nil {
		return nil, err
	}
	// Drop ORDER BY ...
	for i := 0; i+1 < len(toks); i++ {
		if !toks[i].quoted && strings.EqualFold(toks[i].s, "order") && strings.EqualFold(toks[i+1].s, "by") {
			toks = toks[:i]
			break
		}
	}
	p := &parser{toks: toks}
	if len(toks) == 0 {
		return func(*Server, *Issue) bool { return true }, nil
	}
	e, err := p.or()
	if err != nil {
		return nil, err
	}
	if t, ok := p.peek(); ok {
		return nil, fmt.Errorf("unexpected %q", t.s)
	}
	return e, nil
}

func (p *parser) or() (pred, error) {
	l, err := p.and()
	if err != nil {
		return nil, err
	}
	for p.isWord("or") {
		p.pos++
		r, err := p.and()
		if err != nil {
			return nil, err
		}
		a, b := l, r
		l = func(f *Server, is *Issue) bool { return a(f, is) || b(f, is) }
	}
	return l, nil
}

func (p *parser) and() (pred, error) {
	l, err := p.factor()
	if err != nil {
		return nil, err
	}
	for p.isWord("and") {
		p.pos++
		r, err := p.factor()
		if err != nil {
			return nil, err
		}
		a, b := l, r
		l = func(f *Server, is *Issue) bool { return a(f, is) && b(f, is) }
	}
	return l, nil
}

func (p *parser) factor() (pred, error) {
	if p.isWord("not") {
		p.pos++
		e, err := p.factor()
		if err != nil {
			return nil, err
		}
		return func(f *Server, is *Issue) bool { return !e(f, is) }, nil
	}
	if t, ok := p.peek(); ok && !t.quoted && t.s == "(" {
		p.pos++
		e, err := p.or()
		if err != nil {
			return nil, err
		}
		if t, err := p.next(); err != nil || t.s != ")" {
			return nil, fmt.Errorf("missing )")
		}
		return e, nil
	}
	return p.clause()
}

func (p *parser) clause() (pred, error) {
	ft, err := p.next()
	if err != nil {
		return nil, err
	}
	field := strings.ToLower(ft.s)
	switch field {
	case "issuekey":
		field = "key"
	case "type":
		field = "issuetype"
	case "key", "project", "status", "statuscategory", "labels", "assignee", "issuetype", "summary":
	default:
		return nil, fmt.Errorf("field '%s' does not exist or you do not have permission to view it", ft.s)
	}
	ot, err := p.next()
	if err != nil {
		return nil, err
	}
	op := strings.ToLower(ot.s)
	if op == "not" || op == "is" {
		if p.isWord("in") || p.isWord("not") {
			nt, _ := p.next()
			op += " " + strings.ToLower(nt.s)
		}
	}
	var values []string
	switch op {
	case "in", "not in":
		if t, err := p.next(); err != nil || t.s != "(" {
			return nil, fmt.Errorf("expected ( after %s", op)
		}
		for {
			t, err := p.next()
			if err != nil {
				return nil, err
			}
			values = append(values, t.s)
			t, err = p.next()
			if err != nil {
				return nil, err
			}
			if t.s == ")" {
				break
			}
			if t.s != "," {
				return nil, fmt.Errorf("expected , or )")
			}
		}
	case "=", "!=", "~", "!~":
		t, err := p.next()
		if err != nil {
			return nil, err
		}
		values = []string{t.s}
	case "is", "is not":
		t, err := p.next()
		if err != nil || !(strings.EqualFold(t.s, "empty") || strings.EqualFold(t.s, "null")) {
			return nil, fmt.Errorf("expected EMPTY after %s", op)
		}
	default:
		return nil, fmt.Errorf("unsupported operator %q", ot.s)
	}
	if (op == "~" || op == "!~") != (field == "summary") {
		return nil, fmt.Errorf("the operator '%s' is not supported by the '%s' field", op, field)
	}
	return func(f *Server, is *Issue) bool {
		vals := f.fieldValues(is, field)
		// Values compare case-insensitively; for labels too, as in Jira
		// 7.10 and later and in Cloud, though labels are stored as typed.
		match := func(v string) bool {
			return slices.ContainsFunc(vals, func(x string) bool { return strings.EqualFold(x, v) })
		}
		switch op {
		case "=", "in":
			return slices.ContainsFunc(values, match)
		case "!=", "not in":
			return len(vals) > 0 && !slices.ContainsFunc(values, match)
		case "~", "!~":
			has := strings.Contains(strings.ToLower(is.Summary), strings.ToLower(values[0]))
			return has == (op == "~")
		case "is":
			return len(vals) == 0
		default: // is not
			return len(vals) > 0
		}
	}, nil
}
