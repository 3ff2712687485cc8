package config

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Error is one problem in a config file, located by file, line and key path.
type Error struct {
	File string
	Line int
	Path string // e.g. "providers[0].base_url"
	// Env names where the value came from, for a key the file does not
	// have: the environment variable (the default provider's
	// PAYGATE_PROVIDER_*), or the "*_file" key whose file held it.
	Env string
	Msg string
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
	if e.Env != "" {
		b.WriteString(" (from ")
		b.WriteString(e.Env)
		b.WriteString(")")
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
	l := &loader{file: file, env: env, lines: map[string]int{}, nulls: map[string]bool{},
		visited: map[*yaml.Node]bool{}, emptied: map[*yaml.Node]bool{}, open: map[*yaml.Node]bool{}}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var root yaml.Node
	if err := dec.Decode(&root); err != nil && !errors.Is(err, io.EOF) {
		return nil, Errors{l.syntaxError(err, data)}
	}
	// yaml reads the first document only: the keys after a "---" would be
	// dropped unread (the clients listed there, say, with the default
	// client and its published key left in force).
	// An empty document (a trailing "---", perhaps with comments) drops
	// nothing and is allowed.
	for {
		var next yaml.Node
		err := dec.Decode(&next)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, Errors{l.syntaxError(err, data)}
		}
		if !emptyDocument(&next) {
			return nil, Errors{{File: file, Line: next.Line, Msg: "only one YAML document is allowed"}}
		}
	}
	cfg := &Config{Source: file}
	if len(root.Content) > 0 {
		doc := root.Content[0]
		l.expand(doc, "")
		if l.aliasesBad {
			return nil, l.errs
		}
		// The walk reports unknown keys and values of the wrong type
		// together, each at its key: one load names every problem.
		l.checkKeys(doc, reflect.TypeOf(*cfg), "")
		if len(l.errs) > l.badValues {
			// Not only values that do not parse: an unknown key, a key
			// written twice, a bad ${…}… The file does not say what was
			// meant, so nothing is checked against it.
			return nil, l.sorted()
		}
		if err := doc.Decode(cfg); err != nil {
			var te *yaml.TypeError
			switch {
			case l.badValues == 0:
				l.errs = append(l.errs, l.yamlErrors(err)...)
				return nil, l.sorted()
			case !errors.As(err, &te):
				// yaml.v3 stopped at a value the walk reported (a tag
				// that does not fit): what it decoded is not all there
				// is to validate.
				return nil, l.sorted()
			}
			// The walk reported each value that does not decode at its
			// key, which yaml.v3's errors name by line only; it decoded
			// the rest, and validation goes on with it.
		}
		before := len(l.errs)
		l.unused = unusedSecretFiles(cfg)
		l.readSecretFiles(reflect.ValueOf(cfg).Elem(), "")
		if len(l.errs) > before || l.secretUnread {
			return nil, l.sorted()
		}
	}
	// Validation adds the problems of the values the file holds, but none
	// that follows from a value that does not parse (left zero, it would be
	// "required" or "at least 1").
	l.checkProviderList(cfg)
	read := len(l.errs)
	l.fromEnv = defaultProvider(cfg, env)
	written := l.writtenZeros(cfg)
	l.checkClientList(cfg)
	// SetDefaults fills an empty store.redis.addrs with the default
	// address: whether the file's list decoded to none is known only
	// before it (validateStore).
	l.noRedisAddrs = len(cfg.Store.Redis.Addrs) == 0
	cfg.SetDefaults()
	cfg.Store.Redis.AddrsDefaulted = l.noRedisAddrs
	l.keepZeros(cfg, written)
	l.validate(cfg)
	l.errs = append(l.errs[:read], unrelated(l.errs[:read], l.errs[read:])...)
	l.errPaths, l.errsIndexed = nil, 0 // errs changed under reported's index
	if len(l.errs) > 0 {
		return nil, l.sorted()
	}
	cfg.Warnings = l.warnings
	cfg.keys = &keyLines{file: l.file, lines: l.lines}
	return cfg, nil
}

// keyLines are the lines of a config file's keys, kept for Warn.
type keyLines struct {
	file  string
	lines map[string]int
}

// Warn adds to Warnings one at a key path of the file, located as the
// loader's own are ("config.yaml:12: payments.catalog: …"): for a problem
// that a package config may not import (SPEC 10) finds, such as the size
// of the payment tool definitions, which interceptors writes.
func (c *Config) Warn(path, format string, args ...any) {
	l := &loader{}
	if c.keys != nil {
		l.file, l.lines = c.keys.file, c.keys.lines
	}
	c.Warnings = append(c.Warnings, l.errorAt(path, format, args...).Error())
}

// sorted is the errors in the file's order, the first to fix first; those
// of one line keep the order they were found in, and one with no line (a
// value from the environment) comes after the file's.
func (l *loader) sorted() Errors {
	line := func(e *Error) int {
		if e.Line == 0 {
			return math.MaxInt
		}
		return e.Line
	}
	sort.SliceStable(l.errs, func(i, j int) bool { return line(l.errs[i]) < line(l.errs[j]) })
	if len(l.envValues) > 0 {
		for _, e := range l.errs {
			e.Msg = l.withoutEnvValues(e.Msg)
		}
	}
	return l.errs
}

// unrelated is errs (validation's) without those at, above or below the
// key of a value that does not parse (known): decoded as zero, or filled
// with its default, it would be reported again as "required" or "at least
// 1".
//
// It looks paths up in sets rather than comparing every pair: a file with
// thousands of bad values made the pairwise check take seconds.
func unrelated(known, errs []*Error) []*Error {
	if len(known) == 0 {
		return errs
	}
	keys := make(map[string]bool, len(known))  // the known paths
	above := make(map[string]bool, len(known)) // those and every key above them
	for _, k := range known {
		if k.Path == "" {
			return nil
		}
		keys[k.Path] = true
		ancestors(k.Path, func(a string) bool { above[a] = true; return false })
	}
	var out []*Error
	for _, e := range errs {
		if e.Path == "" || above[e.Path] || ancestors(e.Path, func(a string) bool { return keys[a] }) {
			continue
		}
		out = append(out, e)
	}
	return out
}

// ancestors calls f with path and each key path above it, nearest first
// ("providers[0].api_key", "providers[0]", "providers"), until f returns
// true; it reports whether one did.
func ancestors(path string, f func(anc string) bool) bool {
	if f(path) {
		return true
	}
	for i := len(path) - 1; i > 0; i-- {
		if (path[i] == '.' || path[i] == '[') && f(path[:i]) {
			return true
		}
	}
	return false
}

// checkClientList notes, before defaults, whether the built-in development
// client will stand in for the clients key (defaultClient), which it does
// only for a key the file leaves unset. A written empty list ("clients:
// []") is refused: read as unset, it brought back the development key the
// README publishes, when it said that no bot may call.
func (l *loader) checkClientList(c *Config) {
	if len(c.Clients) > 0 {
		return
	}
	if _, written := l.lines["clients"]; written && !l.nulls["clients"] {
		l.at("clients", "an empty list: no client could call paygate; list the bots, each with a name and a key")
		return
	}
	l.defaultClient = true
}

// checkProviderList refuses a written empty list ("providers: []"): read
// as unset, it brought in the provider from the environment
// (defaultProvider, openrouter.ai by default), which the file said
// nothing of, and every chat went there. It is reported before
// validation, so that no problem of that provider is reported as well;
// a value that is not a list has its own error already.
func (l *loader) checkProviderList(c *Config) {
	if _, written := l.lines["providers"]; written && !l.nulls["providers"] && len(c.Providers) == 0 && !l.reported("providers") {
		l.at("providers", "an empty list: no provider could answer; list the providers, each with a name and a base_url, or leave the key out for one from the environment (PAYGATE_PROVIDER_*)")
	}
	// So is "models: []" beside the environment's provider, which brings
	// its model (PAYGATE_MODEL) in for models the file leaves unset: every
	// bot's gpt-4o went to openrouter.ai. Beside providers the file lists,
	// validation names the models none.
	if _, written := l.lines["models"]; written && !l.nulls["models"] && len(c.Models) == 0 && len(c.Providers) == 0 && !l.reported("models") {
		l.at("models", "an empty list: no model a bot could ask for; list the models, each with a name and targets, or leave the key out for the one from the environment (PAYGATE_MODEL)")
	}
}

// zeroKeys are keys whose 0, written in the file, is a choice and not
// "unset". SetDefaults cannot tell a written 0 from a missing key, so Parse
// puts a written 0 back where it means something (keep), and refuses it
// where it would only be read as the default, or where "none" and
// "unlimited" are equally plausible readings. A 0 is kept only where the
// code that reads the value honours it: failover, payments and the audit
// worker read a duration of 0 as their own default, so a kept 0 there
// would still be silently replaced. Paths name list elements with "[]".
// Every key SetDefaults fills with a non-zero number is here.
var zeroKeys = []struct {
	path   string
	keep   bool   // a written 0 stands
	refuse string // else, the error for a written 0
}{
	{path: "audit.retain_text", keep: true},
	{path: "payments.budget.max_payment_calls", keep: true},
	{path: "payments.state_injection.settled_after", keep: true},
	{path: "payments.rules.max_orders_per_user_per_day", refuse: "0 is ambiguous (none, or no cap?): give the cap, at least 1"},
	{path: "payments.rules.max_payment_calls_per_minute", refuse: "0 is ambiguous (none, or no cap?): give the cap, at least 1"},
	{path: "payments.rules.approval_ttl", refuse: "must be above 0: a held order must be approvable"},
	{path: "payments.refunds.confirm_ttl", refuse: "must be above 0: a proposal must be answerable"},
	{path: "failover.recovery.max_attempts", refuse: "0 would mean the default (2); -1 turns recovery off"},
	{path: "failover.max_attempts", refuse: "at least 1 (0 would mean the default, 4)"},
	{path: "failover.breaker.failures", refuse: "at least 1 (0 would mean the default, 5)"},
	{path: "payments.budget.max_rounds", refuse: "at least 2 (0 would mean the default, 3)"},
	{path: "payments.catalog[].max_quantity", refuse: "at least 1 (0 would mean the default, 1)"},
	{path: "models[].targets[].weight", refuse: "at least 1 (0 would mean the default, 1); remove the target to stop using it"},
	{path: "server.max_body_bytes", refuse: "must be above 0 (0 would mean the default, 8388608)"},
	{path: "server.shutdown_timeout", refuse: "must be above 0: SIGTERM would cut every in-flight stream at once (0 would mean the default, 30s)"},
	{path: "failover.retry_after_max_wait", refuse: "must be above 0 (0 would mean the default, 5s); a short wait such as 1ms puts every Retry-After provider in cool-down"},
	{path: "failover.max_round_time", refuse: "must be above 0 (0 would mean the default, 60s)"},
	{path: "failover.breaker.cooldown", refuse: "must be above 0 (0 would mean the default, 30s)"},
	{path: "failover.recovery.window", refuse: "must be above 0 (0 would mean the default, 30s); -1 in failover.recovery.max_attempts turns recovery off"},
	{path: "providers[].timeouts.connect", refuse: "must be above 0 (0 would mean the default, 5s)"},
	{path: "providers[].timeouts.first_byte", refuse: "must be above 0 (0 would mean the default, 30s)"},
	{path: "providers[].timeouts.first_token", refuse: "must be above 0 (0 would mean the default, 30s)"},
	{path: "providers[].timeouts.idle", refuse: "must be above 0 (0 would mean the default, 30s)"},
	{path: "providers[].timeouts.total", refuse: "must be above 0 (0 would mean the default, 300s)"},
	{path: "payments.dedupe_window", refuse: "must be above 0 (0 would mean the default, 10m)"},
	{path: "payments.order_ttl", refuse: "must be above 0 (0 would mean the default, 2h)"},
	{path: "payments.reconcile.query_after", refuse: "must be above 0 (0 would mean the default, 5s)"},
	{path: "payments.reconcile.query_deadline", refuse: "must be above 0 (0 would mean the default, 300ms)"},
	{path: "payments.reconcile.sweep_interval", refuse: "must be above 0 (0 would mean the default, 1m)"},
	{path: "audit.head_every", refuse: "must be above 0 (0 would mean the default, 1m)"},
}

// writtenZero is a zeroKeys entry the file sets to 0, at a path of its own.
type writtenZero struct {
	key  int    // index in zeroKeys
	path string // e.g. "providers[1].timeouts.idle"
}

var listIndex = regexp.MustCompile(`\[\d+\]`)

// writtenZeros lists the zeroKeys the file sets to 0, before defaults. A
// key with no value ("key:", or a ${VAR} that expanded to "") is unset,
// not 0: it gets its default.
func (l *loader) writtenZeros(c *Config) []writtenZero {
	index := map[string]int{}
	for i, k := range zeroKeys {
		index[k.path] = i
	}
	var out []writtenZero
	for p := range l.lines {
		i, ok := index[listIndex.ReplaceAllString(p, "[]")]
		if !ok || l.nulls[p] {
			continue
		}
		if v, ok := fieldAt(reflect.ValueOf(c).Elem(), p); ok && v.IsZero() {
			out = append(out, writtenZero{i, p})
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a].path < out[b].path })
	return out
}

// keepZeros puts back, after defaults, the written zeros that stand, and
// refuses the others.
func (l *loader) keepZeros(c *Config, written []writtenZero) {
	for _, w := range written {
		k := zeroKeys[w.key]
		if !k.keep {
			l.at(w.path, "%s", k.refuse)
			continue
		}
		if v, ok := fieldAt(reflect.ValueOf(c).Elem(), w.path); ok {
			v.SetZero()
		}
	}
}

// fieldAt finds the value at a key path ("providers[0].timeouts.idle") in
// v, a struct, by the fields' yaml names.
func fieldAt(v reflect.Value, path string) (reflect.Value, bool) {
	for path != "" {
		name, rest, _ := strings.Cut(path, ".")
		name, idx, indexed := strings.Cut(name, "[")
		if v.Kind() != reflect.Struct {
			return reflect.Value{}, false
		}
		f, ok := yamlFields(v.Type())[name]
		if !ok {
			return reflect.Value{}, false
		}
		v = v.FieldByIndex(f.Index)
		for indexed {
			var n string
			n, idx, _ = strings.Cut(idx, "]")
			i, err := strconv.Atoi(n)
			if err != nil || v.Kind() != reflect.Slice || i < 0 || i >= v.Len() {
				return reflect.Value{}, false
			}
			v = v.Index(i)
			idx, indexed = strings.CutPrefix(idx, "[")
		}
		path = rest
	}
	return v, true
}

type loader struct {
	file  string
	env   LookupEnv
	lines map[string]int  // key path → line of the key
	nulls map[string]bool // key paths with no value: "key:", "key: ~", "key: ${EMPTY}"
	errs  Errors
	// badValues counts the errors of errs that are values which do not
	// parse (checkValue): with only those, the rest is still validated.
	badValues int
	// errPaths is the set of the paths of errs[:errsIndexed] (reported);
	// whatever removes or reorders errs resets both.
	errPaths    map[string]bool
	errsIndexed int
	warnings    []string
	fromEnv     map[string]string // key path → the variable its value came from (defaultProvider)
	fromFile    map[string]string // key path → the path of the "*_file" key whose file held its value
	unused      map[string]bool   // the "*_file" keys of features the config turns off (unusedSecretFiles)
	// secretUnread: a "*_file" key whose value was refused was not read.
	secretUnread bool
	// unset is key path → the ${VAR}s in its value that are not set, named
	// in an error at the key: the warning that names them is not printed
	// beside errors.
	unset map[string][]string
	// envValues are the variables' values the file's ${VAR}s put in,
	// never printed in an error (withoutEnvValues); envNodes the scalars
	// that hold them.
	envValues []envValue
	envSorted bool // envValues are longest first
	envSeen   map[envValue]bool
	envNodes  map[*yaml.Node]bool
	// defaultClient: the file sets no clients, and the built-in development
	// client stands in (checkClientList).
	defaultClient bool
	// noRedisAddrs: store.redis.addrs decoded to no address, before
	// SetDefaults filled in the default one.
	noRedisAddrs bool

	// expand's walk through aliases and merge keys.
	visited     map[*yaml.Node]bool // nodes expand has been to (an alias leads to one again)
	emptied     map[*yaml.Node]bool // scalars whose ${VAR} expanded to ""
	open        map[*yaml.Node]bool // mappings and lists expand is inside of
	aliasDepth  int                 // aliases and merges expand is inside of
	aliasVisits int                 // nodes visited through them
	aliasesBad  bool                // a cycle, or too many visits: the document is not walked further
}

// maxAliasVisits bounds the nodes the loader visits through aliases and
// merge keys: each alias repeats its anchor's whole value, so aliases of
// aliases multiply ("billion laughs"). A config shares a few blocks.
const maxAliasVisits = 100_000

// at records an error at a key path, using the line of the nearest known
// key; a key the environment filled (the default provider) also names its
// variable.
func (l *loader) at(path, format string, args ...any) {
	e := l.errorAt(path, format, args...)
	if names := l.unset[path]; len(names) > 0 {
		// "clients[0].key: required" of a line that sets it to
		// ${PAYGATE_CLIENT_KEY} did not say what to do.
		for _, name := range names {
			e.Msg += fmt.Sprintf("; ${%s} is not set: export it, or give a default (${%s:-…})", name, name)
		}
	}
	l.errs = append(l.errs, e)
}

func (l *loader) warn(path, format string, args ...any) {
	e := l.errorAt(path, format, args...)
	e.Msg = l.withoutEnvValues(e.Msg)
	l.warnings = append(l.warnings, e.Error())
}

func (l *loader) errorAt(path, format string, args ...any) *Error {
	e := &Error{File: l.file, Line: l.line(path), Path: path, Msg: fmt.Sprintf(format, args...)}
	if v, ok := l.fromEnv[path]; ok {
		e.Env = v
	}
	if f, ok := l.fromFile[path]; ok {
		// The key is not in the file; its "*_file" is: at the mapping's
		// line the error named a key the operator could not find.
		e.Line = l.line(f)
		e.Env = f[strings.LastIndexAny(f, ".]")+1:]
	}
	return e
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

// yamlError is a yaml.v3 error as an Error at its line, without the
// values yaml quotes in some messages ("cannot unmarshal !!str `…`",
// "unknown anchor '…'"): with no key to tell whether the value is a
// secret, none is printed. checkValue, which knows the key, keeps them
// for a key that holds no secret.
func (l *loader) yamlError(err error) *Error {
	e := l.yamlErrorQuoting(err)
	e.Msg = withoutValues(e.Msg)
	return e
}

// yamlErrorQuoting is yamlError with yaml's message as it is.
func (l *loader) yamlErrorQuoting(err error) *Error {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		return &Error{File: l.file, Line: n, Msg: m[2]}
	}
	return &Error{File: l.file, Msg: strings.TrimPrefix(msg, "yaml: ")}
}

var (
	unknownAnchor = regexp.MustCompile(`^unknown anchor '(.*)' referenced$`)
	quotedValue   = regexp.MustCompile(" ?`[^`]*`")
	anchorValue   = regexp.MustCompile(`anchor '[^']*'`)
)

// withoutValues drops the values yaml quotes in a message: "`…`" (a
// scalar, or its first 7 bytes: a secret's start) and an anchor's name
// ("unknown anchor '…' referenced": an unquoted secret starting with '*'
// is an alias whose name is the rest of the secret). A key's name
// ("mapping key \"server\" already defined") stays.
func withoutValues(msg string) string {
	if unknownAnchor.MatchString(msg) {
		return unknownAlias
	}
	msg = anchorValue.ReplaceAllString(msg, "an anchor's")
	return quotedValue.ReplaceAllString(msg, "")
}

// unknownAlias is the error for an alias to no anchor.
const unknownAlias = "an alias (*…) to no anchor defined before it (name not shown: it may be a secret; quote a value that starts with '*')"

// syntaxError is yamlError for the error of reading a document, which
// yaml.v3 gives without a line in some cases: its reader's errors (bytes
// that are not UTF-8, control characters), an alias to no anchor (found
// after the parse), and a scanner or parser error on line 1 (its line 0,
// which it leaves out). The line is found in data.
func (l *loader) syntaxError(err error, data []byte) *Error {
	// YAML's line breaks are CR LF and a lone CR too, by which yaml.v3
	// counts lines; the lines found here are counted by LF.
	data = bytes.ReplaceAll(bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n")), []byte("\r"), []byte("\n"))
	e := l.yamlErrorQuoting(err)
	if _, ok := parserErrors[e.Msg]; ok {
		e.Line = parserErrorLine(e.Line, e.Msg, data)
	}
	if e.Msg == tabViolatesIndentation && namesContext(e.Line, e.Msg, data) {
		// yaml.v3 names the line the plain value it was reading starts
		// on; the tab is in the indentation of a line after it.
		if n := tabIndentedLine(data, e.Line+1); n > 0 {
			e.Line = n
		}
	}
	if (e.Msg == tabViolatesIndentation || e.Msg == cannotStartToken) && e.Line > 0 && tabIndentedLine(data, e.Line) == e.Line {
		e.Msg += ": a tab in the indentation; YAML indents with spaces"
	}
	if (e.Msg == "did not find expected ',' or '}'" || e.Msg == "did not find expected ',' or ']'") && unquotedVar(data, e.Line) {
		// config.yaml writes targets, catalog entries and timeouts as
		// flow collections, where a ${VAR} must be quoted.
		e.Msg += `: an unquoted ${…} inside a flow collection ([…] or {…}), whose braces YAML reads as its own: quote the value, as in "${VAR}"`
	}
	if e.Msg == "mapping values are not allowed in this context" && unquotedVar(data, e.Line) {
		// ${VAR:-a: b}: the default is read by YAML first.
		e.Msg += `: an unquoted value with a ${…} holds ": ", which YAML reads as a key's end: quote the value, as in "${VAR:-a: b}"`
	}
	if e.Line == 0 {
		switch m := unknownAnchor.FindStringSubmatch(e.Msg); {
		case m != nil:
			e.Line = aliasLine(data, m[1])
		case strings.Contains(e.Msg, "UTF-8") || strings.Contains(e.Msg, "Unicode"):
			e.Line = lineOf(data, firstInvalidUTF8(data))
		case e.Msg == "control characters are not allowed":
			e.Line = lineOf(data, firstControl(data))
		default:
			e.Line = 1
		}
	}
	e.Msg = withoutValues(e.Msg)
	return e
}

// yaml.v3's scanner's words for a tab where YAML wants spaces (among
// other characters, for the second): neither says the character is a tab,
// which an editor does not show.
const (
	tabViolatesIndentation = "found a tab character that violates indentation"
	cannotStartToken       = "found character that cannot start any token"
)

// unquotedVar reports whether line n (from 1) of data holds a "${"
// outside quotes and before a comment (a rough reading, as inComment's; it
// only adds a hint to an error).
func unquotedVar(data []byte, n int) bool {
	lines := strings.Split(string(data), "\n")
	if n < 1 || n > len(lines) {
		return false
	}
	line := lines[n-1]
	i := firstUnquoted(line, func(i int) bool { return commentAt(line, i) || strings.HasPrefix(line[i:], "${") })
	return i >= 0 && line[i] == '$'
}

// tabIndentedLine is the first line (from 1), from line from on, whose
// indentation holds a tab, or 0.
func tabIndentedLine(data []byte, from int) int {
	for i, line := range strings.Split(string(data), "\n") {
		if i+1 < from {
			continue
		}
		if indent := line[:len(line)-len(strings.TrimLeft(line, " \t"))]; strings.Contains(indent, "\t") {
			return i + 1
		}
	}
	return 0
}

// parserErrors are the messages of yaml.v3's parser (not its scanner's):
// a token where the document's structure has no place for it; true for
// those given with the block or flow collection the token breaks, false
// for those given with the token alone (a document, or a directive, where
// none may start).
var parserErrors = map[string]bool{
	"did not find expected <stream-start>":   false,
	"did not find expected <document start>": false,
	"found undefined tag handle":             true,
	"did not find expected node content":     true,
	"did not find expected '-' indicator":    true,
	"did not find expected key":              true,
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"found duplicate %YAML directive":        false,
	"found incompatible YAML document":       false,
	"found duplicate %TAG directive":         false,
}

// parserErrorLine is the line (from 1) of the token at fault of a parser
// error (msg) in data, of which yaml.v3 named line n. yaml.v3 numbers a
// parser error's line from 0 (its scanner's from 1), and names the line
// where the block or flow collection the token breaks starts, unless that
// is its line 0: a key at the wrong indentation in a file that starts with
// a comment was reported at the line above the top mapping's first key.
// The text from that collection's line on, read again, has it on line 0,
// and yaml.v3 names the token at fault instead; when that reading does not
// fail the same way, or the token is the end of the file, the
// collection's line stands. An error given with no collection names the
// token's line: read again from there, the rest of the file may fail the
// same way further on (an indented first key's section ends where a
// document cannot start, and so does the text after it, at the next
// section).
func parserErrorLine(n int, msg string, data []byte) int {
	if n == 0 {
		return 1 // line 0 both: yaml.v3 names none
	}
	if last := lineOf(data, len(data)-1); n+1 > last {
		return last // the end of the file, after its last line: a collection never closed
	}
	if !parserErrors[msg] || !namesContext(n, msg, data) {
		return n + 1 // no collection, or one on line 1: the token's line
	}
	start := 0
	for i := 0; i < n; i++ {
		j := bytes.IndexByte(data[start:], '\n')
		if j < 0 {
			return n + 1
		}
		start += j + 1
	}
	k, ok := errorLine(data[start:], msg)
	if !ok || k == 0 {
		return n + 1 // another error, or this one on line 0
	}
	if n+1+k > lineOf(data, len(data)-1) {
		// The token at fault is the end of the file (a flow list never
		// closed), after its last line: the collection's line says more.
		return n + 1
	}
	return n + 1 + k
}

// errorLine is the line yaml.v3 names (0 for none) for the first error
// reading every document of data, when that error is msg (ok).
func errorLine(data []byte, msg string) (line int, ok bool) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if err == nil {
			continue
		}
		m := yamlLine.FindStringSubmatch(err.Error())
		if m == nil {
			return 0, strings.TrimPrefix(err.Error(), "yaml: ") == msg
		}
		n, _ := strconv.Atoi(m[1])
		return n, m[2] == msg
	}
}

// namesContext reports whether line n, which yaml.v3 named for the error
// msg of reading data, is the line where the collection or plain value
// the error breaks starts. yaml.v3 names that line unless it is the
// file's first (its line 0): then it names the line at fault. With a
// line put before the file, the start is past the first line, and named
// one line further down only if n was it.
func namesContext(n int, msg string, data []byte) bool {
	bom := 0
	if bytes.HasPrefix(data, []byte(utf8BOM)) {
		bom = len(utf8BOM) // the file's encoding: it stays first
	}
	shifted := make([]byte, 0, len(data)+2)
	shifted = append(append(append(shifted, data[:bom]...), "#\n"...), data[bom:]...)
	m, ok := errorLine(shifted, msg)
	return ok && m == n+1
}

// lineOf is the line (from 1) of byte offset at in data; 0 for at < 0.
func lineOf(data []byte, at int) int {
	if at < 0 {
		return 0
	}
	return bytes.Count(data[:at], []byte("\n")) + 1
}

// firstInvalidUTF8 is the offset of the first byte of data that does not
// start a valid UTF-8 sequence, or -1.
func firstInvalidUTF8(data []byte) int {
	for i := 0; i < len(data); {
		r, n := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return -1
}

// firstControl is the offset of the first character of data that YAML
// does not allow in a stream (yaml.v3's reader: tab, line breaks,
// printable ASCII, NEL and the printable rest of Unicode), or -1.
func firstControl(data []byte) int {
	for i := 0; i < len(data); {
		r, n := utf8.DecodeRune(data[i:])
		switch {
		case r == '\t' || r == '\n' || r == '\r' || r >= 0x20 && r <= 0x7E || r == 0x85,
			r >= 0xA0 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF:
		default:
			return i
		}
		i += n
	}
	return -1
}

// aliasLine finds the line of the alias *name: the first "*name" that
// starts a token (after a space, a flow indicator or the line's start) and
// ends at the end of an anchor name, outside a comment. 0 if none.
func aliasLine(data []byte, name string) int {
	for i, line := range strings.Split(string(data), "\n") {
		for off := 0; ; {
			j := strings.Index(line[off:], "*"+name)
			if j < 0 {
				break
			}
			j += off
			end := j + 1 + len(name)
			startsToken := j == 0 || strings.IndexByte(" \t[{,", line[j-1]) >= 0
			endsName := end == len(line) || !anchorChar(line[end])
			if startsToken && endsName && !inComment(line[:j]) {
				return i + 1
			}
			off = j + 1
		}
	}
	return 0
}

// anchorChar reports whether c may be part of an anchor's name (yaml.v3:
// letters, digits, '_' and '-').
func anchorChar(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c == '_' || c == '-'
}

// inComment reports whether the text after prefix, on its line, is in a
// comment: prefix holds a '#' at its start or after a space, outside
// quotes (a rough reading; it only picks the line of an error).
func inComment(prefix string) bool {
	return firstUnquoted(prefix, func(i int) bool { return commentAt(prefix, i) }) >= 0
}

// commentAt reports whether line[i] is a '#' that starts a YAML comment: at
// the line's start or after a space or tab.
func commentAt(line string, i int) bool {
	return line[i] == '#' && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t')
}

// firstUnquoted is the first index i of line, outside a quoted run ('…' or
// "…", escapes not read), at which at(i) holds; -1 when none does.
func firstUnquoted(line string, at func(i int) bool) int {
	var quote byte
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case at(i):
			return i
		}
	}
	return -1
}

// yamlErrors is yamlError for a decode error, which may be a
// *yaml.TypeError holding several problems ("unmarshal errors:\n  line 3:
// ...\n  line 7: ..."): one Error each, so every one starts with file:line.
func (l *loader) yamlErrors(err error) []*Error {
	var te *yaml.TypeError
	if !errors.As(err, &te) || len(te.Errors) == 0 {
		return []*Error{l.yamlError(err)}
	}
	out := make([]*Error, len(te.Errors))
	for i, m := range te.Errors {
		out[i] = l.yamlError(errors.New(strings.TrimSpace(m)))
	}
	return out
}

// checkValue decodes n into a fresh t, as the whole document's decode
// would, and reports a failure at path: yaml's decode names a bad value by
// its line only. A path that already has an error (a ${VAR} that did not
// expand) gets no second one.
func (l *loader) checkValue(n *yaml.Node, t reflect.Type, path string) {
	msg := fraction(n, t)
	if msg == "" {
		msg = outOfRange(n, t)
	}
	if msg == "" {
		msg = leadingZero(n, t)
	}
	if msg == "" {
		msg = quotedScalar(n, t)
	}
	if msg == "" {
		msg = sizeUnit(n, t, path)
	}
	if msg == "" {
		msg = blockLineBreak(n, t, path)
	}
	if msg != "" && !l.reported(path) {
		l.errs = append(l.errs, &Error{File: l.file, Line: n.Line, Path: path, Msg: msg})
		l.badValues++
		return
	}
	err := n.Decode(reflect.New(t).Interface())
	if err == nil || l.reported(path) {
		return
	}
	if k := t.Kind(); k == reflect.Slice || k == reflect.Map {
		// checkKeys checks a list's or a mapping's entries itself: here the
		// value is of the wrong shape, which yaml reports quoting its first
		// bytes. It is never quoted, whatever the key: a single value where
		// a list or a mapping belongs is most often a ${VAR} meant for a
		// secret's key inside it (clients: ${PAYGATE_CLIENT_KEY}).
		l.errs = append(l.errs, &Error{File: l.file, Line: n.Line, Path: path, Msg: shapeError(n, k)})
		l.badValues++
		return
	}
	msgs := []string{err.Error()}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	}
	for _, m := range msgs {
		e := l.yamlErrorQuoting(errors.New(m))
		if secretKey(path) || l.envNodes[n] {
			// A secret, or a variable's value, which yaml quotes cut
			// where withoutEnvValues would not find it.
			e.Msg = withoutValues(e.Msg)
		}
		if e.Line == 0 {
			e.Line = n.Line // yaml's resolve errors ("cannot decode … as a !!int") have none
		}
		e.Path = path
		l.errs = append(l.errs, e)
		l.badValues++
	}
}

// fraction is the error for a number with a fraction (or NaN) written for
// an integer key t, or "". yaml decodes 0.5 into an int as 0, cutting the
// fraction without a word: max_payment_calls: 0.5 turned every money tool
// off. A whole number written as a float (2.0, 1e3) is that number; one
// too large for t is yaml's own error.
func fraction(n *yaml.Node, t reflect.Type) string {
	if !countingKey(t) {
		return ""
	}
	var f float64
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!float" || n.Decode(&f) != nil || f == math.Trunc(f) {
		return ""
	}
	return "want a whole number, not " + n.Value
}

// outOfRange is the error for a whole number too large (or too far below
// zero) for an integer key t, or "". yaml's own error named a float and
// cut the digits ("cannot unmarshal !!float `9999999...` into int64"), and
// yaml.v3 decodes a number far below zero, or one written as a float at
// 2^63, as -2^63 without a word: the error then named a number the file
// does not hold.
func outOfRange(n *yaml.Node, t reflect.Type) string {
	if !countingKey(t) || t.Kind() >= reflect.Uint || n.Kind != yaml.ScalarNode {
		return ""
	}
	bits := t.Bits()
	maxV, minV := int64(1)<<(bits-1)-1, -int64(1)<<(bits-1)
	plain := strings.ReplaceAll(n.Value, "_", "")
	above := false
	switch n.ShortTag() {
	case "!!int":
		_, err := strconv.ParseInt(plain, 0, bits)
		if !errors.Is(err, strconv.ErrRange) {
			return ""
		}
		above = !strings.HasPrefix(plain, "-")
	case "!!float":
		f, err := strconv.ParseFloat(plain, 64)
		limit := math.Ldexp(1, bits-1)
		if err != nil || f != math.Trunc(f) || f >= -limit && f < limit {
			return ""
		}
		above = f > 0
	default:
		return ""
	}
	if above {
		return fmt.Sprintf("%s is above the largest number this key holds, %d", n.Value, maxV)
	}
	return fmt.Sprintf("%s is below the smallest number this key holds, %d", n.Value, minV)
}

// sizeWithUnit is a size written with a unit: 8MB, 16MiB, 512k, 4096B.
var sizeWithUnit = regexp.MustCompile(`^([0-9]{1,6})\s*(?:([kKmMgGtT])i?[bB]?|[bB])$`)

// sizeUnit is the error for a size key (a count of bytes, "…_bytes")
// written with a unit, or "": yaml's own words ("cannot unmarshal !!str
// `8MB` into int64") named neither the unit nor the number to write, and
// other servers' body limits are written so (8MB, 16m).
func sizeUnit(n *yaml.Node, t reflect.Type, path string) string {
	if n.Kind != yaml.ScalarNode || !countingKey(t) || !strings.HasSuffix(path, "_bytes") {
		return ""
	}
	m := sizeWithUnit.FindStringSubmatch(strings.TrimSpace(n.Value))
	if m == nil {
		return ""
	}
	num, _ := strconv.ParseInt(m[1], 10, 64)
	example := m[1]
	if m[2] != "" {
		shift := 10 * (strings.IndexByte("kmgt", strings.ToLower(m[2])[0]) + 1)
		example = fmt.Sprintf("%s %siB is %d", m[1], strings.ToUpper(m[2]), num<<shift)
	}
	return strconv.Quote(n.Value) + " has a unit, which this key does not read: write the number of bytes (" + example + ")"
}

// quotedScalar is the error for a number or bool written in quotes for a
// key that counts or a switch, or "": YAML reads it as text, which the key
// refuses, and yaml's own words ("cannot unmarshal !!str `20` into int")
// named neither the quotes nor the fix, beside prices the config quotes.
func quotedScalar(n *yaml.Node, t reflect.Type) string {
	if n.Kind != yaml.ScalarNode || n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) == 0 {
		return ""
	}
	bare := &yaml.Node{Kind: yaml.ScalarNode, Value: n.Value}
	switch {
	case t.Kind() == reflect.Bool:
		if bare.ShortTag() == "!!bool" && bare.Decode(reflect.New(t).Interface()) == nil {
			return strconv.Quote(n.Value) + " is in quotes, which makes it text: write true or false without them"
		}
	case countingKey(t):
		if bare.ShortTag() == "!!int" && bare.Decode(reflect.New(t).Interface()) == nil {
			return strconv.Quote(n.Value) + " is in quotes, which makes it text: write the number without them"
		}
	}
	return ""
}

// blockLineBreak is the error for a secret's key (secretKey), or a "*_file"
// key, written as a block scalar that ends in a line break, or "": YAML
// keeps a "|" or ">" block's last line break (all of them with "|+"), which
// no editor shows and no secret ends in on purpose. A "*_file" key and a
// ${VAR} drop it; written in the file, the webhook secret and the Redis
// password took it in silence (each signature refused by the merchant,
// the password by Redis at run time), and a key sent in a header was
// refused as holding a control character, which did not say why.
func blockLineBreak(n *yaml.Node, t reflect.Type, path string) string {
	if n.Kind != yaml.ScalarNode || t.Kind() != reflect.String || n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) == 0 ||
		!strings.HasSuffix(n.Value, "\n") || !secretKey(path) {
		return ""
	}
	what := "the secret"
	if strings.HasSuffix(path, "_file") || strings.HasSuffix(path, "]") {
		if strings.Contains(strings.TrimRight(n.Value, "\n"), "\n") {
			return "" // file contents, PEM text: not a file name, as the read's error says
		}
		what = "the file's name"
	}
	return "a block scalar (| or >) keeps its last line break, which would be part of " + what + " (value not shown): write |- or >-, or the value on the key's line"
}

// countingKey reports whether t, a key's type, is an integer yaml decodes
// as a number (a Duration, an integer too, reads its own text).
func countingKey(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
	default:
		return false
	}
	return !reflect.PointerTo(t).Implements(reflect.TypeFor[yaml.Unmarshaler]())
}

var leadingZeroNumber = regexp.MustCompile(`^[-+]?0[0-9]+$`)

// leadingZero is the error for a whole number written with a leading zero
// for an integer key t, or "". yaml reads one whose digits are all octal
// as an octal number (max_quantity: 012 decoded as 10, 010 as 8), and
// another (08) as decimal: a zero-padded cap silently became another
// number. 0, 0x10 and YAML 1.2's 0o12 say what they mean. yaml drops the
// underscores of digit grouping before it reads a number: 0_12 is 012.
func leadingZero(n *yaml.Node, t reflect.Type) string {
	if !countingKey(t) || n.Kind != yaml.ScalarNode {
		return ""
	}
	plain := strings.ReplaceAll(n.Value, "_", "")
	if !leadingZeroNumber.MatchString(plain) {
		return ""
	}
	if tag := n.ShortTag(); tag != "!!int" && tag != "!!float" {
		return "" // quoted, or tagged !!str: text, which yaml refuses for a number
	}
	digits := strings.TrimPrefix(plain, "+")
	sign := ""
	if rest, ok := strings.CutPrefix(digits, "-"); ok {
		sign, digits = "-", rest
	}
	decimal := sign + cmp.Or(strings.TrimLeft(digits, "0"), "0")
	if decimal == "-0" {
		decimal = "0"
	}
	var read int64
	if n.Decode(&read) == nil && strconv.FormatInt(read, 10) != decimal {
		return fmt.Sprintf("%s has a leading zero, which YAML reads as an octal number (%d): write %s", n.Value, read, decimal)
	}
	return fmt.Sprintf("%s has a leading zero: write %s", n.Value, decimal)
}

// shapeError says what a list's or a mapping's key (kind) wants and what n
// is instead, never n's value.
func shapeError(n *yaml.Node, kind reflect.Kind) string {
	want := "a list"
	if kind == reflect.Map {
		want = "a mapping of keys"
	}
	switch n.Kind {
	case yaml.SequenceNode:
		return "want " + want + ", not a list"
	case yaml.MappingNode:
		return "want " + want + ", not a mapping"
	}
	return "want " + want + ", not a single value (value not shown: it may be a secret)"
}

// reported reports whether path or one of its ancestors has an error. It
// looks the paths up in a set of the errors' paths, brought up to date
// with the errors added since the last call: scanning every error for each
// value made a file with thousands of bad values take seconds.
func (l *loader) reported(path string) bool {
	if l.errPaths == nil {
		l.errPaths = map[string]bool{}
	}
	for _, e := range l.errs[l.errsIndexed:] {
		l.errPaths[e.Path] = true
	}
	l.errsIndexed = len(l.errs)
	return ancestors(path, func(a string) bool { return l.errPaths[a] })
}

func childPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// expand replaces ${VAR} and ${VAR:-default} inside scalar values, and
// records the line of every key path (and which have no value). It follows
// aliases and "<<" merge keys as yaml.v3 decodes them, so a key path used
// through one has the line where the anchored block writes it; a node is
// expanded once, however many paths lead to it.
func (l *loader) expand(n *yaml.Node, path string) {
	if l.aliasesBad {
		return
	}
	if n.Kind == yaml.AliasNode {
		l.expandAlias(n, n.Alias, path)
		return
	}
	if l.aliasDepth > 0 {
		if l.aliasVisits++; l.aliasVisits > maxAliasVisits {
			l.aliasesBad = true
			l.errs = append(l.errs, &Error{File: l.file, Line: n.Line, Path: path,
				Msg: fmt.Sprintf("aliases expand to more than %d values: write the blocks out, or share fewer", maxAliasVisits)})
			return
		}
	}
	again := l.visited[n]
	l.visited[n] = true
	if !again && l.yamlIndicator(n, path) {
		return
	}
	switch n.Kind {
	case yaml.MappingNode:
		l.open[n] = true
		defer delete(l.open, n)
		own, merged, merges := mappingEntries(n)
		for _, e := range own {
			l.expandEntry(e, path)
		}
		for _, m := range merges {
			l.expandMerge(m, path)
		}
		l.aliasDepth++
		for _, e := range merged {
			l.expandEntry(e, path)
		}
		l.aliasDepth--
	case yaml.SequenceNode:
		l.open[n] = true
		defer delete(l.open, n)
		for i, c := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			l.lines[p] = c.Line
			l.expand(c, p)
		}
	case yaml.ScalarNode:
		if again {
			if l.emptied[n] {
				l.nulls[path] = true
			}
			return
		}
		if !strings.Contains(n.Value, "$") {
			return
		}
		env := l.env
		if secretKey(path) {
			env = withoutTrailingLineBreak(env)
		}
		v, unset, used, err := expandVars(n.Value, env)
		if err != nil {
			msg := err.Error()
			if secretKey(path) {
				msg = err.withoutValue()
			}
			if err.unterminated && n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) == 0 && strings.Contains(n.LineComment, "}") {
				// ${VAR:-a #1}: the "}" is in the comment yaml.v3 kept
				// (not printed: it is the value's rest).
				msg += `: YAML reads " #" as the start of a comment, which cut the value there: quote the value, as in "${VAR:-a #1}"`
			}
			l.errs = append(l.errs, &Error{File: l.file, Line: n.Line, Path: path, Msg: msg})
			return
		}
		if len(used) > 0 {
			l.addEnvValues(n, used)
		}
		if len(unset) > 0 {
			if l.unset == nil {
				l.unset = map[string][]string{}
			}
			l.unset[path] = unset
		}
		for _, name := range unset {
			// Read as empty, as a shell does; a key left with no value
			// takes its default, which may not be what a variable was
			// meant to set (approval_above: ${APPROVAL_ABOVE}, not
			// exported, ran with 500.00). Named, never a value.
			l.warn(path, "${%s} is not set and has no default (${%s:-…}): read as empty", name, name)
		}
		n.Value = v
		if v == "" {
			l.emptied[n] = true
			l.nulls[path] = true // quoted or not: the variable is unset or empty
		}
		if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) == 0 {
			// Re-resolve so "${PORT:-8080}" can fill an int field.
			n.Tag = ""
			if v != "" && n.ShortTag() == "!!null" {
				// A value that reads as null ("null", "~") would empty a
				// string field: it is that text (and an error in a number,
				// not its default). An empty value stays null: unset.
				n.Tag = "!!str"
			}
		}
		if v == "" {
			// Quoted too: decoded as the quoted "" it would be a value,
			// which a price, a number or a bool refuses, where the key
			// is unset and takes its default.
			n.Tag = "!!null"
		}
	}
}

// expandEntry expands one key and value of a mapping at path.
func (l *loader) expandEntry(e entry, path string) {
	p := childPath(path, e.key.Value)
	l.lines[p] = e.key.Line
	l.expand(e.value, p)
	if v := resolveAlias(e.value); v.Kind == yaml.ScalarNode && v.ShortTag() == "!!null" {
		l.nulls[p] = true
	}
}

// expandAlias follows an alias (or a mapping merged in) to target, at path.
// An alias inside its own anchor's value would lead on for ever (yaml.v3
// refuses it when decoding): it is an error, and so is the rest of the
// walk.
func (l *loader) expandAlias(n, target *yaml.Node, path string) {
	if target == nil || l.open[target] {
		l.aliasesBad = true
		l.errs = append(l.errs, &Error{File: l.file, Line: n.Line, Path: path, Msg: "an alias inside its own anchor's value"})
		return
	}
	l.aliasDepth++
	l.expand(target, path)
	l.aliasDepth--
}

// expandMerge checks what a "<<" key merges in: aliases inside their own
// anchor's value are refused as expandAlias refuses them; the merged keys
// themselves are walked by expand with the mapping's own.
func (l *loader) expandMerge(m entry, path string) {
	p := childPath(path, m.key.Value)
	sources := []*yaml.Node{m.value}
	if v := resolveAlias(m.value); v.Kind == yaml.SequenceNode {
		sources = v.Content
	}
	for _, src := range sources {
		if src.Kind == yaml.AliasNode && (src.Alias == nil || l.open[src.Alias]) {
			l.aliasesBad = true
			l.errs = append(l.errs, &Error{File: l.file, Line: src.Line, Path: p, Msg: "an alias inside its own anchor's value"})
			return
		}
		if !l.visited[src] && src.Kind != yaml.AliasNode {
			l.visited[src] = true // an inline mapping merged in: its tag is checked here
			if l.yamlIndicator(src, p) {
				return
			}
		}
	}
}

// withoutTrailingLineBreak is env with each value's trailing CR and LF
// dropped, as a "*_file" key drops its file's: a secret made with `echo`
// (a Kubernetes secret exposed as an env var, say) ends in one, and no
// secret does on purpose. A leading UTF-8 byte-order mark goes too, as a
// "*_file" key's does: a secret made from a file saved as "UTF-8 with BOM"
// carries it.
func withoutTrailingLineBreak(env LookupEnv) LookupEnv {
	return func(name string) (string, bool) {
		v, ok := env(name)
		return strings.TrimRight(strings.TrimPrefix(v, utf8BOM), "\r\n"), ok
	}
}

// yamlIndicator reports, as an error at path, a value that YAML read as
// syntax where an unquoted value starting with '!' or '&' (a generated
// password) was meant: a tag other than YAML's own "!!…" (yaml.v3 decodes
// "!Secret" as an empty string, "!a b" as "b"), or an anchor on nothing
// ("&Secret" decodes as empty). Neither is printed: it is the value.
func (l *loader) yamlIndicator(n *yaml.Node, path string) bool {
	var msg string
	switch {
	case n.Tag != "" && !strings.HasPrefix(n.Tag, "!!"):
		msg = "starts with a YAML tag (!…), which paygate does not read: quote a value that starts with '!' (value not shown)"
	case n.Kind == yaml.ScalarNode && n.Anchor != "" && n.Value == "" && n.ShortTag() == "!!null":
		msg = "an anchor (&…) with no value: quote a value that starts with '&' (value not shown)"
	default:
		return false
	}
	l.errs = append(l.errs, &Error{File: l.file, Line: n.Line, Path: path, Msg: msg})
	return true
}

// varError is a "$" in the value s that does not expand.
type varError struct {
	s            string
	at           int    // byte offset of its "$" in s
	unterminated bool   // a "${" with no "}" after it
	bare         bool   // a "$" before a name: $NAME, which is not expanded
	inDefault    bool   // a "${" or "$NAME" inside a default
	name         string // the name that is not one (in ${…}), or after a bare "$"
}

// Error quotes the value, for a key that holds no secret.
func (e *varError) Error() string {
	switch {
	case e.unterminated:
		return fmt.Sprintf("unterminated ${ in %q", e.s)
	case e.inDefault:
		return fmt.Sprintf("a ${ or $ before a name inside a default is not expanded (a default is text: write $$ for a literal $) in %q", e.s)
	case e.bare:
		return fmt.Sprintf("$%s is not expanded: write ${%s} for a variable, or $$ for a literal $, in %q", e.name, e.name, e.s)
	}
	return fmt.Sprintf("bad variable name %q in %q", e.name, e.s)
}

// withoutValue says what is wrong and where in the value, but not the value
// (nor the bad name, a piece of it), for a secret's key: a literal secret
// with "${" in it (a generated password) would be printed whole.
func (e *varError) withoutValue() string {
	what, hint := "bad variable name in ${…}", "write $$ for a literal $"
	switch {
	case e.unterminated:
		what = "unterminated ${"
	case e.inDefault:
		what, hint = "a ${ or $ before a name inside a default", "a default is text: write $$ for a literal $"
	case e.bare:
		what, hint = "a $ before a name", "write ${NAME} for a variable, $$ for a literal $"
	}
	return fmt.Sprintf("%s at character %d of the value (not shown: a secret; %s)",
		what, utf8.RuneCountInString(e.s[:e.at])+1, hint)
}

// expandVars expands ${NAME} and ${NAME:-default}; "$$" is a literal "$".
// unset lists the names of variables without a default that are not set
// (read as empty); used, the variables whose values it put in.
// A "$" before a name ($NAME, shell style) is refused rather than kept as
// text: it was meant as a variable, and a secret would otherwise be that
// text. A default is text with "$$" for "$": a variable in it (nesting,
// ${A:-${B}}) is refused too. Any other "$" is itself.
func expandVars(s string, env LookupEnv) (_ string, unset []string, used []envValue, _ *varError) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c != '$' || i+1 >= len(s):
			b.WriteByte(c)
			continue
		case s[i+1] == '$':
			b.WriteByte('$')
			i++
			continue
		case i == 0 && nameStart(s[1]):
			// A value that starts with $NAME means a variable
			// (admin.token: $ADMIN_TOKEN, listen: $HOST:8080); kept as
			// text, the token became the guessable text "$ADMIN_TOKEN". A
			// "$" before letters later in a value is text ("Prices in
			// $USD", a generated password), as it always was.
			return "", nil, nil, &varError{s: s, at: i, bare: true, name: leadingName(s[1:])}
		case s[i+1] != '{':
			b.WriteByte(c)
			continue
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", nil, nil, &varError{s: s, at: i, unterminated: true}
		}
		expr := s[i+2 : i+end]
		name, def, hasDef := strings.Cut(expr, ":-")
		if !validEnvName(name) {
			return "", nil, nil, &varError{s: s, at: i, name: name}
		}
		if hasDef {
			d, at := defaultText(def)
			if at >= 0 {
				return "", nil, nil, &varError{s: s, at: i + 2 + len(name) + 2 + at, inDefault: true}
			}
			def = d
		}
		v, ok := env(name)
		if (!ok || v == "") && hasDef {
			v = def
		}
		if !ok && !hasDef {
			unset = append(unset, name)
		}
		if ok && v != "" && (v != def || !hasDef) {
			used = append(used, envValue{name, v})
		}
		b.WriteString(v)
		i += end
	}
	return b.String(), unset, used, nil
}

// envValue is a variable's value that a ${VAR} put in a key's value.
type envValue struct{ name, value string }

// minEnvShown is the length from which a variable's value is named by its
// variable in errors, never printed (withoutEnvValues): no secret paygate
// takes is shorter, and a shorter text ("info", "30s") may be a word of the
// message itself.
const minEnvShown = 8

// withoutEnvValues is msg, an error or a warning, with the value of each
// variable that a ${VAR} put in the file's values written as its ${NAME}:
// it is not in the file, and a secret's variable given to another key
// (listen: ${OPENROUTER_API_KEY}) was printed whole into CI output. Every
// key's are, not only those of the key the message is at: an error at one
// key quotes another's value too (admin_listen's "… and server.listen …
// are one address", an unknown provider's name).
func (l *loader) withoutEnvValues(msg string) string {
	if !l.envSorted {
		// The longest first: a value that holds another is named whole.
		slices.SortStableFunc(l.envValues, func(a, b envValue) int { return len(b.value) - len(a.value) })
		l.envSorted = true
	}
	for _, v := range l.envValues {
		msg = strings.ReplaceAll(msg, v.value, "${"+v.name+"}")
	}
	return msg
}

// addEnvValues notes the values the ${VAR}s of the scalar n put in, for
// withoutEnvValues.
func (l *loader) addEnvValues(n *yaml.Node, used []envValue) {
	if l.envNodes == nil {
		l.envNodes, l.envSeen = map[*yaml.Node]bool{}, map[envValue]bool{}
	}
	l.envNodes[n] = true
	for _, v := range used {
		if len(v.value) >= minEnvShown && !l.envSeen[v] {
			l.envSeen[v] = true
			l.envValues = append(l.envValues, v)
			l.envSorted = false
		}
	}
}

// defaultText reads the default of a ${NAME:-default}: "$$" is a "$", and a
// variable (a "${", or a default that starts with "$NAME"), which a default
// does not expand, is refused: at is its offset in def, or -1.
func defaultText(def string) (text string, at int) {
	var b strings.Builder
	for i := 0; i < len(def); i++ {
		c := def[i]
		switch {
		case c != '$' || i+1 >= len(def):
			b.WriteByte(c)
		case def[i+1] == '$':
			b.WriteByte('$')
			i++
		case def[i+1] == '{' || i == 0 && nameStart(def[1]):
			return "", i // ${A:-${B}} or ${A:-$B…}: meant as a variable
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), -1
}

// nameStart reports whether c may start a variable name.
func nameStart(c byte) bool {
	return c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
}

// leadingName is the variable name at the start of s.
func leadingName(s string) string {
	n := 0
	for n < len(s) && (nameStart(s[n]) || n > 0 && s[n] >= '0' && s[n] <= '9') {
		n++
	}
	return s[:n]
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
// and every value that does not decode into its field (checkValue). It
// reads aliases and "<<" merge keys as yaml.v3 decodes them (expand has
// refused the aliases that lead on for ever): a merged mapping is checked
// against the same type, its errors at its own lines.
func (l *loader) checkKeys(n *yaml.Node, t reflect.Type, path string) {
	n = resolveAlias(n)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == reflect.TypeOf(Duration(0)) || t == reflect.TypeOf(Decimal{}) {
		l.checkValue(n, t, path)
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			if !(n.Kind == yaml.ScalarNode && n.Tag == "!!null") {
				l.errs = append(l.errs, &Error{File: l.file, Line: n.Line, Path: path, Msg: "want a mapping of keys"})
			}
			return
		}
		fields := yamlFields(t)
		l.checkEntries(n, path, func(k, v *yaml.Node, p string) {
			f, ok := fields[k.Value]
			if !ok {
				l.errs = append(l.errs, &Error{File: l.file, Line: k.Line, Path: shownPath(path, k.Value, hasValue(v)), Msg: unknownKey(k.Value, hasValue(v), fields)})
				return
			}
			l.checkKeys(v, f.Type, p)
		})
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			l.checkValue(n, t, path)
			return
		}
		for i, c := range n.Content {
			l.checkKeys(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			l.checkValue(n, t, path)
			return
		}
		l.checkEntries(n, path, func(_, v *yaml.Node, p string) { l.checkKeys(v, t.Elem(), p) })
	default:
		l.checkValue(n, t, path)
	}
}

// checkEntries calls check for each key and value the mapping n gives at
// path: its own keys (a key written twice is reported, once), then the
// keys merged in with "<<" that it does not write itself. A "<<" that
// merges anything but mappings is reported.
func (l *loader) checkEntries(n *yaml.Node, path string, check func(k, v *yaml.Node, p string)) {
	own, merged, merges := mappingEntries(n)
	seen := map[string]int{}
	for _, e := range own {
		if l.duplicateKey(seen, e.key, shownPath(path, e.key.Value, hasValue(e.value))) {
			continue
		}
		check(e.key, e.value, childPath(path, e.key.Value))
	}
	for i, m := range merges {
		if i > 0 {
			// yaml.v3 merges the last "<<" only.
			l.errs = append(l.errs, &Error{File: l.file, Line: m.key.Line, Path: childPath(path, m.key.Value),
				Msg: fmt.Sprintf("written twice (first at line %d): merge a list, <<: [*a, *b]", merges[0].key.Line)})
			continue
		}
		if !mergeable(m.value) {
			l.errs = append(l.errs, &Error{File: l.file, Line: m.key.Line, Path: childPath(path, m.key.Value),
				Msg: "want a mapping, or a list of mappings, to merge"})
		}
	}
	for _, e := range merged {
		check(e.key, e.value, childPath(path, e.key.Value))
	}
}

// unknownKey is the error for a key k that fields do not have, which
// names k as shownKey does.
func unknownKey(k string, valued bool, fields map[string]reflect.StructField) string {
	shown, cut := shownKey(k, valued)
	base := "" // the name before the cut
	if cut {
		base = shown[:len(shown)-len("…")-1]
	}
	if _, known := fields[base]; cut && known && strings.HasPrefix(k[len(base):], ":") {
		// A no-break or full-width space after the ':' is no space to
		// YAML: the value is still joined to the key, and deleting the
		// character would leave it so.
		if r, _ := utf8.DecodeRuneInString(k[len(base)+1:]); hardToSee[r] != "" {
			return fmt.Sprintf("unknown key: a value joined to %s by ':' and U+%04X (%s), which YAML does not read as a space, reads as part of the key (not shown: it may be a secret); write %q", base, r, hardToSee[r], base+": …")
		}
		return fmt.Sprintf("unknown key: a value joined to %s by ':' with no space after it reads as part of the key (not shown: it may be a secret); write %q", base, base+": …")
	}
	for _, r := range k {
		if what, ok := hardToSee[r]; ok {
			// A line that reads "server:" is otherwise refused as
			// "server: unknown key".
			clean := strings.Map(func(r rune) rune {
				if _, ok := hardToSee[r]; ok {
					return -1
				}
				return r
			}, k)
			return fmt.Sprintf("unknown key: its name holds U+%04X (%s), hard to see: delete it", r, what) +
				cmp.Or(suggest(clean, fields), elsewhere(clean))
		}
	}
	if !cut {
		if nest := dottedPath(k, fields); nest != "" {
			return "unknown key: YAML does not read a dot as nesting; write " + nest
		}
		return "unknown key" + cmp.Or(suggest(k, fields), elsewhere(k))
	}
	return "unknown key (the rest of its name not shown: it may be a secret)" + cmp.Or(suggest(base, fields), elsewhere(base))
}

// dottedPath says how to nest k, a key written as a path (server.listen:
// the README and SPEC name keys so), when each of its names is a key of
// the mapping before it, starting at fields; else "".
func dottedPath(k string, fields map[string]reflect.StructField) string {
	names := strings.Split(k, ".")
	if len(names) < 2 {
		return ""
	}
	for i, name := range names {
		f, ok := fields[name]
		if !ok {
			return ""
		}
		if i == len(names)-1 {
			break
		}
		t := f.Type
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || t == reflect.TypeOf(Decimal{}) {
			return ""
		}
		fields = yamlFields(t)
	}
	// Said from the last name up, so that it holds whether the mapping
	// above exists (one more "server:" would be a key written twice).
	out := fmt.Sprintf("%q indented under %q", names[len(names)-1]+":", names[len(names)-2]+":")
	for i := len(names) - 3; i >= 0; i-- {
		out += fmt.Sprintf(", itself under %q", names[i]+":")
	}
	return out + " (the one already there, if the file has it)"
}

// elsewhere names the keys of other sections that k is, as suggest
// compares names, for a key written in the wrong section (a catalog at the
// top level, listen outside server), or "": up to three, with list
// elements as "[]" and a mapping's keys as "*".
func elsewhere(k string) string {
	paths := keyPaths()[keySpelling(k)]
	if len(paths) == 0 || len(paths) > 3 {
		return ""
	}
	return " (did you mean " + strings.Join(paths, " or ") + "?)"
}

// keyPaths indexes every key path of Config by its key's name as
// keySpelling writes it, each list in path order.
var keyPaths = sync.OnceValue(func() map[string][]string {
	index := map[string][]string{}
	var walk func(t reflect.Type, path string, depth int)
	walk = func(t reflect.Type, path string, depth int) {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch {
		case depth > 8:
			return
		case t.Kind() == reflect.Slice:
			walk(t.Elem(), path+"[]", depth+1)
			return
		case t.Kind() == reflect.Map:
			walk(t.Elem(), path+".*", depth+1)
			return
		case t.Kind() != reflect.Struct || t == reflect.TypeOf(Decimal{}):
			return
		}
		for name, f := range yamlFields(t) {
			p := childPath(path, name)
			index[keySpelling(name)] = append(index[keySpelling(name)], p)
			walk(f.Type, p, depth+1)
		}
	}
	walk(reflect.TypeOf(Config{}), "", 0)
	for _, ps := range index {
		sort.Strings(ps)
	}
	return index
})

// hardToSee are characters an editor shows as nothing or as a space, which
// a key's name may hold unseen: the byte-order mark of a second file joined
// to the first (cat a.yaml b.yaml), spaces pasted from a web page or typed
// with a Chinese input method.
var hardToSee = map[rune]string{
	'\ufeff': "a byte-order mark",
	'\u00a0': "a no-break space",
	'\u200b': "a zero-width space",
	'\u200c': "a zero-width non-joiner",
	'\u200d': "a zero-width joiner",
	'\u2060': "a word joiner",
	'\u202f': "a narrow no-break space",
	'\u3000': "a full-width space",
}

// shownKey is a mapping key as an error names it: when it has no value
// (valued false), up to and with its first ':', '=' or blank, then "…",
// when more follows (cut). No key paygate reads, nor an HTTP header's
// name, holds one, and what follows is most often the key's value joined
// to it: in a flow mapping a key and its value with no space after the
// ':' ({token:sk-…}) are one key, "token:sk-…", with no value, and named
// whole it printed the secret. A key with a value is named whole: its
// value is its own, and what the key holds is a name ("base url", a
// blank for the '_', is a typo the error names and suggests a key for).
func shownKey(k string, valued bool) (shown string, cut bool) {
	i := strings.IndexAny(k, ":= \t")
	if valued || i < 0 || i == len(k)-1 {
		return k, false
	}
	return k[:i+1] + "…", true
}

// shownPath is the path of key in the mapping at parent as an error names
// it: with the key cut as shownKey cuts it when the path is a secret's
// (secretKey: a key config does not know, a credential header's name).
// A model's name in prices ("llama3:8b") is named whole.
func shownPath(parent, key string, valued bool) string {
	p := childPath(parent, key)
	if shown, cut := shownKey(key, valued); cut && secretKey(p) {
		return childPath(parent, shown)
	}
	return p
}

// hasValue reports whether v, a mapping key's value, is one: a key
// written with no value (a flow mapping's {token:sk-…}) has null.
func hasValue(v *yaml.Node) bool { return v != nil && v.ShortTag() != "!!null" }

// entry is one key and its value in a mapping.
type entry struct{ key, value *yaml.Node }

// mappingEntries splits a mapping as yaml.v3 decodes it: own are the
// pairs it writes (in order, a key written twice included), merges its
// "<<" pairs, and merged the pairs those bring in that own does not write,
// each key once: the first mapping merged that writes it wins, and a
// merged mapping's own "<<" is followed in turn.
func mappingEntries(n *yaml.Node) (own, merged, merges []entry) {
	own, merges = ownEntries(n)
	written := map[string]bool{}
	for _, e := range own {
		written[e.key.Value] = true
	}
	seen := map[*yaml.Node]bool{n: true} // each mapping merged once, a cycle ended
	var add func(m *yaml.Node)
	add = func(m *yaml.Node) {
		m = resolveAlias(m)
		switch {
		case m.Kind == yaml.SequenceNode:
			for _, c := range m.Content {
				if c := resolveAlias(c); c.Kind == yaml.MappingNode {
					add(c)
				}
			}
			return
		case m.Kind != yaml.MappingNode || seen[m]:
			return
		}
		seen[m] = true
		mo, mm := ownEntries(m)
		for _, e := range mo {
			if !written[e.key.Value] {
				written[e.key.Value] = true
				merged = append(merged, e)
			}
		}
		for _, e := range mm {
			add(e.value)
		}
	}
	for _, e := range merges {
		add(e.value)
	}
	return own, merged, merges
}

// ownEntries splits the pairs a mapping writes into its "<<" pairs and the
// others.
func ownEntries(n *yaml.Node) (own, merges []entry) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		e := entry{resolveAlias(n.Content[i]), n.Content[i+1]}
		if isMergeKey(e.key) {
			merges = append(merges, e)
		} else {
			own = append(own, e)
		}
	}
	return own, merges
}

// isMergeKey reports a "<<" key, as yaml.v3 reads one (quoted, it is text).
func isMergeKey(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.Value == "<<" && (k.Tag == "" || k.Tag == "!" || k.ShortTag() == "!!merge")
}

// mergeable reports whether a "<<" value is what yaml.v3 merges: a
// mapping, or a list of mappings, each perhaps through an alias.
func mergeable(v *yaml.Node) bool {
	v = resolveAlias(v)
	if v.Kind == yaml.SequenceNode {
		for _, c := range v.Content {
			if resolveAlias(c).Kind != yaml.MappingNode {
				return false
			}
		}
		return true
	}
	return v.Kind == yaml.MappingNode
}

// resolveAlias is the node an alias stands for (through aliases of
// aliases), or n itself.
func resolveAlias(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

// duplicateKey reports a key written twice in one mapping, at the second
// one's line with its path (yaml's own error for it names a line only, in
// a multi-line message), and remembers the first.
func (l *loader) duplicateKey(seen map[string]int, k *yaml.Node, path string) bool {
	if first, dup := seen[k.Value]; dup {
		l.errs = append(l.errs, &Error{File: l.file, Line: k.Line, Path: path, Msg: fmt.Sprintf("written twice (first at line %d)", first)})
		return true
	}
	seen[k.Value] = k.Line
	return false
}

// fieldsByType caches yamlFields per struct type: the loader asks for a
// type's fields once per mapping it reads, thousands of times for a long
// catalog, and the fields of a type never change.
var fieldsByType sync.Map // reflect.Type -> map[string]reflect.StructField

// yamlFields maps t's yaml key names to its fields. The map is shared by
// every caller: read it, never write it.
func yamlFields(t reflect.Type) map[string]reflect.StructField {
	if m, ok := fieldsByType.Load(t); ok {
		return m.(map[string]reflect.StructField)
	}
	m, _ := fieldsByType.LoadOrStore(t, buildYAMLFields(t))
	return m.(map[string]reflect.StructField)
}

func buildYAMLFields(t reflect.Type) map[string]reflect.StructField {
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

// suggest names a known key that differs from k by a typo, or only in its
// case and separators (MAX-BODY-BYTES, maxBodyBytes: other tools' and
// environment variables' spellings), if there is one; of two as near, the
// first by name.
func suggest(k string, fields map[string]reflect.StructField) string {
	best, bestD := "", 3
	for name := range fields {
		d := editDistance(k, name)
		if keySpelling(k) == keySpelling(name) {
			d = 0
		}
		if d < bestD || d == bestD && best != "" && name < best {
			best, bestD = name, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// keySpelling is a key's name without case and separators.
func keySpelling(k string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '_', '-', ' ', '.':
			return -1
		}
		return unicode.ToLower(r)
	}, k)
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
				if l.unused[p] {
					continue
				}
				if l.reported(p) {
					// Refused already (blockLineBreak): not read, and, as
					// for a file that cannot be read, nothing is
					// validated without the secret it holds.
					l.secretUnread = true
					continue
				}
				data, err := os.ReadFile(fv.String())
				if err != nil {
					l.at(p, "cannot read the file it names: %v%s", fileError(err), notAPath(fv.String()))
					continue
				}
				// A leading byte-order mark is the file's encoding
				// (saved as "UTF-8 with BOM" on Windows), not the
				// secret's first character, as its trailing line break
				// is no part of it either.
				secret := strings.TrimRight(strings.TrimPrefix(string(data), utf8BOM), "\r\n")
				if secret == "" {
					// Read as unset, it would switch the admin API
					// off or fall back to a generated key in silence.
					l.at(p, "the file it names is empty (a secret mount that did not fill?)")
					continue
				}
				tv.SetString(secret)
				if l.fromFile == nil {
					l.fromFile = map[string]string{}
				}
				l.fromFile[childPath(path, base)] = p
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

// unusedSecretFiles is the set of the "*_file" keys of features cfg, as
// decoded, turns off: the Redis password with the embedded store, the
// webhook secret with no webhooks.url, the admin token with the admin API
// off, the user hash key with privacy.forward_user drop or keep. Their
// files are not read, as the features' other keys are not checked: a
// secret left unmounted there (a staging copy, a move to the embedded
// store) refused a config that never uses it.
func unusedSecretFiles(cfg *Config) map[string]bool {
	return map[string]bool{
		"store.redis.password_file": cfg.Store.Driver != "redis",
		"webhooks.secret_file":      cfg.Webhooks.URL == "",
		"admin.token_file":          cfg.Server.AdminListen == "off",
		// Only forward_user hash keys a hash (serve loads no key for
		// drop or keep).
		"privacy.hash_key_file": cfg.Privacy.ForwardUser == "drop" || cfg.Privacy.ForwardUser == "keep",
	}
}

// utf8BOM is the byte-order mark an editor may put before a file's UTF-8
// text (Windows PowerShell 5's Out-File and Set-Content -Encoding UTF8).
const utf8BOM = "\xef\xbb\xbf"

// fileError is why a file could not be read, without its name: an
// *fs.PathError's text holds the path, which for a "*_file" key may be the
// secret itself.
func fileError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return errors.New("unreadable")
}

// emptyDocument reports a YAML document with no content: nothing, or only a
// null scalar (what "---" followed by comments decodes to).
func emptyDocument(n *yaml.Node) bool {
	if len(n.Content) == 0 {
		return true
	}
	c := n.Content[0]
	return len(n.Content) == 1 && c.Kind == yaml.ScalarNode && c.ShortTag() == "!!null" && c.Value == ""
}
