package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Error is one problem in a config file, located by file, line and key path.
type Error struct {
	File string
	Line int
	Path string // e.g. "providers[0].base_url"
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":")
		b.WriteString(strconv.Itoa(e.Line))
	}
	if e.Path != "" {
		b.WriteString(": ")
		b.WriteString(e.Path)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in one load, so an operator fixes them in one go.
type Errors []*Error

func (es Errors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "\n")
}

// LookupEnv is the environment seen by ${VAR} expansion; os.LookupEnv in
// production, a map in tests.
type LookupEnv func(string) (string, bool)

// Load reads, expands, decodes, defaults and validates the config file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	return Parse(data, path, os.LookupEnv)
}

// Parse is Load for bytes already read; file names the source in errors.
func Parse(data []byte, file string, env LookupEnv) (*Config, error) {
	l := &loader{file: file, env: env, lines: map[string]int{}}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, Errors{l.yamlError(err)}
	}
	cfg := &Config{Source: file}
	if len(root.Content) > 0 {
		doc := root.Content[0]
		l.expand(doc, "")
		l.checkKeys(doc, reflect.TypeOf(*cfg), "")
		// Decode even after key errors (yaml skips unknown keys), so one
		// load reports the bad values too.
		if err := doc.Decode(cfg); err != nil {
			l.decodeError(err)
		}
		if len(l.errs) > 0 {
			return nil, l.errs
		}
		l.readSecretFiles(reflect.ValueOf(cfg).Elem(), "")
		if len(l.errs) > 0 {
			return nil, l.errs
		}
	}
	defaultProvider(cfg, env)
	written := l.writtenZeros(cfg)
	cfg.SetDefaults()
	l.keepZeros(cfg, written)
	l.validate(cfg)
	if len(l.errs) > 0 {
		return nil, l.errs
	}
	cfg.Warnings = l.warnings
	return cfg, nil
}

// zeroKeys are keys whose 0, written in the file, is a choice and not
// "unset". SetDefaults cannot tell a written 0 from a missing key, so Parse
// puts a written 0 back where it means something (keep), and refuses it
// where it would only be read as the default, or where "none" and
// "unlimited" are equally plausible readings.
var zeroKeys = []struct {
	path   string
	keep   bool   // a written 0 stands
	refuse string // else, the error for a written 0
	isZero func(*Config) bool
	zero   func(*Config)
}{
	{path: "audit.retain_text", keep: true,
		isZero: func(c *Config) bool { return c.Audit.RetainText == 0 }, zero: func(c *Config) { c.Audit.RetainText = 0 }},
	{path: "payments.budget.max_payment_calls", keep: true,
		isZero: func(c *Config) bool { return c.Payments.Budget.MaxPaymentCalls == 0 }, zero: func(c *Config) { c.Payments.Budget.MaxPaymentCalls = 0 }},
	{path: "payments.rules.max_orders_per_user_per_day", refuse: "0 is ambiguous (none, or no cap?): give the cap, at least 1",
		isZero: func(c *Config) bool { return c.Payments.Rules.MaxOrdersPerUserPerDay == 0 }},
	{path: "payments.rules.max_payment_calls_per_minute", refuse: "0 is ambiguous (none, or no cap?): give the cap, at least 1",
		isZero: func(c *Config) bool { return c.Payments.Rules.MaxPaymentCallsPerMinute == 0 }},
	{path: "payments.refunds.confirm_ttl", refuse: "must be above 0: a proposal must be answerable",
		isZero: func(c *Config) bool { return c.Payments.Refunds.ConfirmTTL == 0 }},
	{path: "failover.recovery.max_attempts", refuse: "0 would mean the default (2); -1 turns recovery off",
		isZero: func(c *Config) bool { return c.Failover.Recovery.MaxAttempts == 0 }},
}

// writtenZeros lists the zeroKeys the file sets to 0, before defaults.
func (l *loader) writtenZeros(c *Config) []int {
	var out []int
	for i, k := range zeroKeys {
		if _, written := l.lines[k.path]; written && k.isZero(c) {
			out = append(out, i)
		}
	}
	return out
}

// keepZeros puts back, after defaults, the written zeros that stand, and
// refuses the others.
func (l *loader) keepZeros(c *Config, written []int) {
	for _, i := range written {
		k := zeroKeys[i]
		if k.keep {
			k.zero(c)
		} else {
			l.at(k.path, "%s", k.refuse)
		}
	}
}

type loader struct {
	file     string
	env      LookupEnv
	lines    map[string]int // key path → line of the key
	values   []valueAt      // every value node decode fills, in document order
	errs     Errors
	warnings []string
}

// valueAt is a value node with its key path and the Go type it decodes into,
// so a decode error, which yaml locates by line only, can name its key.
type valueAt struct {
	node *yaml.Node
	path string
	typ  reflect.Type // pointers removed, as in yaml's messages
}

// at records an error at a key path, using the line of the nearest known key.
func (l *loader) at(path, format string, args ...any) {
	l.errs = append(l.errs, &Error{File: l.file, Line: l.line(path), Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (l *loader) warn(path, format string, args ...any) {
	e := &Error{File: l.file, Line: l.line(path), Path: path, Msg: fmt.Sprintf(format, args...)}
	l.warnings = append(l.warnings, e.Error())
}

// line finds the line of path or of its closest ancestor present in the file.
func (l *loader) line(path string) int {
	for p := path; p != ""; {
		if n, ok := l.lines[p]; ok {
			return n
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return 0
}

var yamlLine = regexp.MustCompile(`(?s)^(?:yaml: )?line (\d+): (.*)$`)

func (l *loader) yamlError(err error) *Error {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		return &Error{File: l.file, Line: n, Msg: m[2]}
	}
	return &Error{File: l.file, Msg: strings.TrimPrefix(msg, "yaml: ")}
}

// decodeError records what doc.Decode returned: each type error named by
// its key path, except at keys that already have an error (a "want a
// mapping" or ${VAR} error is the same problem seen again).
func (l *loader) decodeError(err error) {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		l.errs = append(l.errs, l.yamlError(err))
		return
	}
	reported := make(map[string]bool, len(l.errs))
	for _, e := range l.errs {
		if e.Path != "" {
			reported[e.Path] = true
		}
	}
	used := map[*yaml.Node]bool{}
	for _, m := range te.Errors {
		e := l.yamlError(errors.New(m))
		e.Path = l.keyOf(e.Line, m, e.Msg, used)
		if e.Path != "" && underReported(e.Path, reported) {
			continue
		}
		l.errs = append(l.errs, e)
	}
}

var yamlTypeMsg = regexp.MustCompile("(?s)^cannot unmarshal \\S+(?: `(.*)`)? into (.+)$")

// keyOf finds the key path of the type error raw ("line N: msg"): the value
// on that line the message is about. yaml's own messages name the target
// type and the start of the value; a custom UnmarshalYAML's message is
// matched by running it again on each candidate. Values that still tie are
// taken in document order, the order yaml decodes them in. "" if none fits.
func (l *loader) keyOf(line int, raw, msg string, used map[*yaml.Node]bool) string {
	m := yamlTypeMsg.FindStringSubmatch(msg)
	for _, v := range l.values {
		if v.node.Line != line || used[v.node] {
			continue
		}
		if m != nil {
			if v.typ.String() != m[2] || valueSnippet(v.node) != m[1] {
				continue
			}
		} else if !sameUnmarshalError(v, raw) {
			continue
		}
		used[v.node] = true
		return v.path
	}
	return ""
}

// valueSnippet is the start of a value as yaml quotes it in type errors.
func valueSnippet(n *yaml.Node) string {
	if len(n.Value) > 10 {
		return n.Value[:7] + "..."
	}
	return n.Value
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// sameUnmarshalError reports whether v's type decodes itself and fails on
// v's node with the error raw. Config's unmarshallers only parse, so running
// one again has no effect.
func sameUnmarshalError(v valueAt, raw string) bool {
	p := reflect.New(v.typ)
	if !p.Type().Implements(unmarshalerType) {
		return false
	}
	var te *yaml.TypeError
	err := p.Interface().(yaml.Unmarshaler).UnmarshalYAML(v.node)
	return errors.As(err, &te) && slices.Contains(te.Errors, raw)
}

// underReported reports whether path or one of its ancestors has an error.
func underReported(path string, reported map[string]bool) bool {
	for p := path; ; {
		if reported[p] {
			return true
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			return false
		}
		p = p[:i]
	}
}

func childPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// expand replaces ${VAR} and ${VAR:-default} inside scalar values.
func (l *loader) expand(n *yaml.Node, path string) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := childPath(path, k.Value)
			l.lines[p] = k.Line
			l.expand(v, p)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			l.lines[p] = c.Line
			l.expand(c, p)
		}
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "$") {
			return
		}
		v, err := expandVars(n.Value, l.env)
		if err != nil {
			l.errs = append(l.errs, &Error{File: l.file, Line: n.Line, Path: path, Msg: err.Error()})
			return
		}
		n.Value = v
		if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) == 0 {
			// Re-resolve so "${PORT:-8080}" can fill an int field.
			n.Tag = ""
		}
	}
}

// expandVars expands ${NAME} and ${NAME:-default}; "$$" is a literal "$".
func expandVars(s string, env LookupEnv) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '$' && i+1 < len(s) && s[i+1] == '$' {
			b.WriteByte('$')
			i++
			continue
		}
		if c != '$' || i+1 >= len(s) || s[i+1] != '{' {
			b.WriteByte(c)
			continue
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", fmt.Errorf("unterminated ${ in %q", s)
		}
		expr := s[i+2 : i+end]
		name, def, hasDef := strings.Cut(expr, ":-")
		if !validEnvName(name) {
			return "", fmt.Errorf("bad variable name %q in %q", name, s)
		}
		v, ok := env(name)
		if (!ok || v == "") && hasDef {
			v = def
		}
		b.WriteString(v)
		i += end
	}
	return b.String(), nil
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if r == '_' || (r >= 'A' && r <= 'Z') || (r >= 'a' && r <= 'z') || (i > 0 && r >= '0' && r <= '9') {
			continue
		}
		return false
	}
	return true
}

// checkKeys reports every mapping key that has no field in the target type,
// and notes each value's key path and type for decodeError.
func (l *loader) checkKeys(n *yaml.Node, t reflect.Type, path string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if path != "" {
		l.values = append(l.values, valueAt{node: n, path: path, typ: t})
	}
	switch t.Kind() {
	case reflect.Struct:
		if t == reflect.TypeOf(Duration(0)) || t == reflect.TypeOf(Decimal{}) {
			return
		}
		if n.Kind != yaml.MappingNode {
			if !(n.Kind == yaml.ScalarNode && n.Tag == "!!null") {
				l.errs = append(l.errs, &Error{File: l.file, Line: n.Line, Path: path, Msg: "want a mapping of keys"})
			}
			return
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := childPath(path, k.Value)
			f, ok := fields[k.Value]
			if !ok {
				l.errs = append(l.errs, &Error{File: l.file, Line: k.Line, Path: p, Msg: "unknown key" + suggest(k.Value, fields)})
				continue
			}
			l.checkKeys(v, f.Type, p)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return // decode reports the type error with its line
		}
		for i, c := range n.Content {
			l.checkKeys(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			l.checkKeys(n.Content[i+1], t.Elem(), childPath(path, n.Content[i].Value))
		}
	}
}

func yamlFields(t reflect.Type) map[string]reflect.StructField {
	m := make(map[string]reflect.StructField, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		m[name] = f
	}
	return m
}

// suggest names a known key that differs from k by a typo, if there is one.
func suggest(k string, fields map[string]reflect.StructField) string {
	best, bestD := "", 3
	for name := range fields {
		if d := editDistance(k, name); d < bestD {
			best, bestD = name, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

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

// readSecretFiles fills every field X from the file named by its sibling
// "X_file", so secrets can be mounted instead of written into the config.
func (l *loader) readSecretFiles(v reflect.Value, path string) {
	switch v.Kind() {
	case reflect.Struct:
		t := v.Type()
		fields := yamlFields(t)
		for name, f := range fields {
			fv := v.FieldByIndex(f.Index)
			p := childPath(path, name)
			if base, ok := strings.CutSuffix(name, "_file"); ok && f.Type.Kind() == reflect.String {
				target, ok := fields[base]
				if !ok || target.Type.Kind() != reflect.String || fv.String() == "" {
					continue
				}
				tv := v.FieldByIndex(target.Index)
				if tv.String() != "" {
					l.at(p, "both %s and %s are set; keep one", base, name)
					continue
				}
				data, err := os.ReadFile(fv.String())
				if err != nil {
					l.at(p, "reading secret file: %v", err)
					continue
				}
				tv.SetString(strings.TrimRight(string(data), "\r\n"))
				continue
			}
			l.readSecretFiles(fv, p)
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			l.readSecretFiles(v.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
	}
}
