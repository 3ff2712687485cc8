package config

import (
	"embed"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// source is the package's own type declarations, so the reference is built
// from the code that is compiled, comments included, and cannot drift from it.
//
//go:embed types.go values.go
var source embed.FS

// Reference returns the config reference as a Markdown table: every key of
// config.yaml with its type, its default and the doc comment of its field.
// Keys, types and descriptions come from this package's source (embedded at
// build time); defaults come from running SetDefaults, so the code, not a
// comment, is the truth. The README's "Config reference" section is this
// table, and a test fails when the two differ.
func Reference() string {
	rows, err := referenceRows(embeddedSource())
	if err != nil {
		// The embedded files are this package's compiled source.
		panic("config: " + err.Error())
	}
	return renderReference(rows)
}

// embeddedSource returns the embedded files by name.
func embeddedSource() map[string][]byte {
	entries, err := source.ReadDir(".")
	if err != nil {
		panic("config: embedded source: " + err.Error())
	}
	files := make(map[string][]byte, len(entries))
	for _, e := range entries {
		b, err := source.ReadFile(e.Name())
		if err != nil {
			panic("config: embedded source: " + err.Error())
		}
		files[e.Name()] = b
	}
	return files
}

// refRow is one key of the reference.
type refRow struct {
	Key     string // path: "server.listen", "clients[].name", "providers[].prices.*.input"
	Type    string
	Default string // Markdown, already quoted
	Doc     string
}

// refType is a struct type parsed from the source.
type refType struct {
	doc    string
	fields []*ast.Field
}

// referenceRows walks the parsed source from type Config and returns a row
// for every key a config file may set, in declaration order.
func referenceRows(files map[string][]byte) ([]refRow, error) {
	fset := token.NewFileSet()
	types := map[string]refType{}
	leaves := map[string]bool{}    // named types that decode themselves (UnmarshalYAML)
	named := map[string]ast.Expr{} // other named types: their underlying type
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		f, err := parser.ParseFile(fset, name, files[name], parser.ParseComments)
		if err != nil {
			return nil, fmt.Errorf("parsing %s: %w", name, err)
		}
		for _, decl := range f.Decls {
			switch d := decl.(type) {
			case *ast.GenDecl:
				for _, spec := range d.Specs {
					ts, ok := spec.(*ast.TypeSpec)
					if !ok {
						continue
					}
					st, ok := ts.Type.(*ast.StructType)
					if !ok {
						named[ts.Name.Name] = ts.Type // type Mode string
						continue
					}
					doc := ts.Doc
					if doc == nil {
						doc = d.Doc
					}
					types[ts.Name.Name] = refType{doc: doc.Text(), fields: st.Fields.List}
				}
			case *ast.FuncDecl:
				if d.Name.Name == "UnmarshalYAML" && d.Recv != nil && len(d.Recv.List) == 1 {
					leaves[typeName(d.Recv.List[0].Type)] = true
				}
			}
		}
	}
	if _, ok := types["Config"]; !ok {
		return nil, fmt.Errorf("no type Config in %v", names)
	}
	w := &refWalker{types: types, leaves: leaves, named: named, defaults: newDefaults()}
	w.walk("Config", "", nil)
	return w.rows, w.err
}

func typeName(e ast.Expr) string {
	switch t := e.(type) {
	case *ast.StarExpr:
		return typeName(t.X)
	case *ast.Ident:
		return t.Name
	case *ast.SelectorExpr:
		return typeName(t.X) + "." + t.Sel.Name
	}
	return ""
}

type refWalker struct {
	types    map[string]refType
	leaves   map[string]bool
	named    map[string]ast.Expr
	defaults defaults
	rows     []refRow
	err      error
}

// field is one yaml key of a struct as the source declares it.
type field struct {
	goName, key string
	typ         ast.Expr
	doc         string
	secret      bool
}

func structFields(t refType) []field {
	var out []field
	for _, f := range t.fields {
		if f.Tag == nil || len(f.Names) == 0 {
			continue
		}
		tag, err := strconv.Unquote(f.Tag.Value)
		if err != nil {
			continue
		}
		st := reflect.StructTag(tag)
		key, _, _ := strings.Cut(st.Get("yaml"), ",")
		if key == "" || key == "-" {
			continue
		}
		doc := f.Doc.Text()
		if doc == "" {
			doc = f.Comment.Text()
		}
		for _, n := range f.Names {
			out = append(out, field{goName: n.Name, key: key, typ: f.Type, doc: doc, secret: st.Get("secret") == "true"})
		}
	}
	return out
}

// walk adds the rows of struct type name under prefix; steps locate its
// values in the defaults.
func (w *refWalker) walk(name, prefix string, steps []string) {
	fields := structFields(w.types[name])
	for _, f := range fields {
		key := f.key
		if prefix != "" {
			key = prefix + "." + f.key
		}
		s := append(append([]string(nil), steps...), f.key)
		typ, child, childKey, childSteps := w.describe(f.typ, key, s)
		row := refRow{
			Key:     key,
			Type:    typ,
			Doc:     describeField(f, fields, w.types[child].doc),
			Default: w.defaults.render(s, child != ""),
		}
		if f.secret {
			row.Type += ", secret"
		}
		if requiredRE.MatchString(row.Doc) && !strings.HasSuffix(f.key, "_file") {
			row.Default = "required"
		}
		w.rows = append(w.rows, row)
		if child != "" {
			w.walk(child, childKey, childSteps)
		}
	}
}

// requiredRE finds an unconditional "Required." ("Required with backend
// wechatpay" is conditional: its default stays in the column).
var requiredRE = regexp.MustCompile(`(^|[.;] )Required[.,;:]`)

// describe names a field's type for the reader and, for a struct (directly,
// in a list or in a map), returns the struct to walk and the key prefix and
// default steps of its fields.
func (w *refWalker) describe(e ast.Expr, key string, steps []string) (typ, child, childKey string, childSteps []string) {
	switch t := e.(type) {
	case *ast.StarExpr:
		return w.describe(t.X, key, steps)
	case *ast.ArrayType:
		elem, child, _, _ := w.describe(t.Elt, key, steps)
		if child != "" {
			return "list of mappings", child, key + "[]", append(steps, "[]")
		}
		return "list of " + plural(elem), "", "", nil
	case *ast.MapType:
		elem, child, _, _ := w.describe(t.Value, key, steps)
		if child != "" {
			return "map of mappings", child, key + ".*", append(steps, "*")
		}
		return "map of " + plural(elem), "", "", nil
	}
	name := typeName(e)
	if _, ok := w.types[name]; ok && !w.leaves[name] {
		return "mapping", name, key, steps
	}
	switch name {
	case "string":
		return "string", "", "", nil
	case "bool":
		return "boolean", "", "", nil
	case "int", "int32", "int64", "uint", "uint32", "uint64":
		return "integer", "", "", nil
	case "float32", "float64":
		return "number", "", "", nil
	case "Duration", "time.Duration":
		return "duration", "", "", nil
	case "Decimal":
		return "decimal", "", "", nil
	}
	if u, ok := w.named[name]; ok && !w.leaves[name] {
		return w.describe(u, key, steps)
	}
	if w.err == nil {
		w.err = fmt.Errorf("%s: type %s is not described by the config reference (declare config types in types.go)", key, name)
	}
	return name, "", "", nil
}

func plural(s string) string {
	switch s {
	case "string", "boolean", "integer", "number", "duration", "decimal":
		return s + "s"
	}
	return s
}

// describeField is the field's doc comment as one paragraph, Go field names
// replaced by their keys. A field without a comment is a "*_file" sibling
// (described as such), is named in a sibling's comment ("Username and
// Password authenticate"), whose text it shares, or is a section described by
// its type's comment.
func describeField(f field, siblings []field, typeDoc string) string {
	doc, self := f.doc, f.goName
	if doc == "" {
		if base, ok := strings.CutSuffix(f.key, "_file"); ok {
			for _, s := range siblings {
				if s.key == base {
					return fmt.Sprintf("Reads `%s` from this file instead (a mounted secret; a trailing line break and a leading UTF-8 byte-order mark are dropped, an empty file refused; a relative path is from the working directory, not the config's); set one of the two.", base)
				}
			}
		}
		for _, s := range siblings {
			if s.goName != f.goName && wordRE(f.goName).MatchString(s.doc) {
				doc, self = s.doc, s.goName
				break
			}
		}
	}
	if doc == "" && typeDoc != "" {
		doc, self = typeDoc, ""
		// "Server holds the listeners." describes the key server.
		if word, rest, ok := strings.Cut(typeDoc, " "); ok && wordRE(word).MatchString(typeName(f.typ)) {
			doc = "`" + f.key + "` " + rest
		}
	}
	doc = strings.Join(strings.Fields(doc), " ")
	for _, s := range siblings {
		if s.goName == self {
			// Its own name only where it opens the comment: "TLS connects
			// with TLS" keeps the second TLS.
			if rest, ok := strings.CutPrefix(doc, s.goName); ok && (rest == "" || !isWordChar(rest[0])) {
				doc = "`" + s.key + "`" + rest
			}
			continue
		}
		doc = wordRE(s.goName).ReplaceAllString(doc, "`"+s.key+"`")
	}
	return doc
}

func wordRE(w string) *regexp.Regexp { return regexp.MustCompile(`\b` + regexp.QuoteMeta(w) + `\b`) }

func isWordChar(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// defaults holds the config paygate runs with given no file (Default), for
// the Default column of keys outside lists and maps.
type defaults struct {
	whole reflect.Value
}

func newDefaults() defaults {
	whole := Default(func(string) (string, bool) { return "", false })
	return defaults{whole: reflect.ValueOf(whole).Elem()}
}

// render formats the default at steps; a mapping (section) has none.
func (d defaults) render(steps []string, section bool) string {
	var v reflect.Value
	ok := false
	if !inList(steps) {
		v, ok = lookup(d.whole, steps)
	}
	if !ok {
		v, ok = sampleValue(steps)
	}
	if !ok || (section && v.Kind() == reflect.Struct) {
		return ""
	}
	return renderValue(v)
}

func inList(steps []string) bool {
	for _, s := range steps[:len(steps)-1] {
		if s == "[]" || s == "*" {
			return true
		}
	}
	return false
}

// sampleValue is the default of a key inside lists or maps: SetDefaults run
// on a config whose lists on the way to the key hold one empty element (a
// map, one empty entry), as if the file had written "- {}".
func sampleValue(steps []string) (reflect.Value, bool) {
	c := &Config{}
	v := reflect.ValueOf(c).Elem()
walk:
	for _, s := range steps[:len(steps)-1] {
		switch s {
		case "[]":
			if v.Kind() != reflect.Slice {
				return v, false
			}
			v.Set(reflect.MakeSlice(v.Type(), 1, 1))
			v = v.Index(0)
		case "*":
			if v.Kind() != reflect.Map {
				return v, false
			}
			m := reflect.MakeMap(v.Type())
			m.SetMapIndex(reflect.Zero(v.Type().Key()), reflect.Zero(v.Type().Elem()))
			v.Set(m)
			break walk // map entries are values: SetDefaults cannot fill them
		default:
			if v.Kind() != reflect.Struct {
				return v, false
			}
			f, ok := yamlFields(v.Type())[s]
			if !ok {
				return v, false
			}
			v = v.FieldByIndex(f.Index)
		}
	}
	c.SetDefaults()
	return lookup(reflect.ValueOf(c).Elem(), steps)
}

// lookup follows yaml keys, "[]" (the first element) and "*" (any entry).
func lookup(v reflect.Value, steps []string) (reflect.Value, bool) {
	for _, s := range steps {
		for v.Kind() == reflect.Pointer {
			if v.IsNil() {
				return v, false
			}
			v = v.Elem()
		}
		switch {
		case s == "[]":
			if v.Kind() != reflect.Slice || v.Len() == 0 {
				return v, false
			}
			v = v.Index(0)
		case s == "*":
			if v.Kind() != reflect.Map || v.Len() == 0 {
				return v, false
			}
			v = v.MapIndex(v.MapKeys()[0])
		default:
			if v.Kind() != reflect.Struct {
				return v, false
			}
			f, ok := yamlFields(v.Type())[s]
			if !ok {
				return v, false
			}
			v = v.FieldByIndex(f.Index)
		}
	}
	return v, true
}

func renderValue(v reflect.Value) string {
	switch x := v.Interface().(type) {
	case Duration:
		return "`" + formatDuration(x.D()) + "`"
	case Decimal:
		if x.Text == "" {
			return "`\"\"`"
		}
		return "`\"" + x.Text + "\"`"
	case string:
		if x == "" {
			return "`\"\"`"
		}
		return "`" + x + "`"
	}
	switch v.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint, reflect.Uint64, reflect.Uint32, reflect.Float64:
		return fmt.Sprintf("`%v`", v.Interface())
	case reflect.Slice:
		if v.Len() == 0 {
			return "`[]`"
		}
		if v.Type().Elem().Kind() == reflect.String {
			q := make([]string, v.Len())
			for i := range q {
				q[i] = strconv.Quote(v.Index(i).String())
			}
			return "`[" + strings.Join(q, ", ") + "]`"
		}
		return fmt.Sprintf("%d built in (see description)", v.Len())
	case reflect.Map:
		if v.Len() == 0 {
			return "`{}`"
		}
		return fmt.Sprintf("%d built in (see description)", v.Len())
	}
	return ""
}

// formatDuration writes 10m rather than 10m0s, as config.yaml does.
func formatDuration(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// renderReference writes rows as a Markdown table.
func renderReference(rows []refRow) string {
	var b strings.Builder
	b.WriteString("| Key | Type | Default | Description |\n|---|---|---|---|\n")
	esc := strings.NewReplacer("|", `\|`, "\n", " ")
	for _, r := range rows {
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", r.Key, r.Type, esc.Replace(r.Default), esc.Replace(r.Doc))
	}
	return b.String()
}
