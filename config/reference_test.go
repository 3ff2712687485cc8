package config

import (
	"flag"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

var update = flag.Bool("update", false, "rewrite the README's config reference from the config types")

const (
	refStart = "<!-- config-reference:start -->"
	refEnd   = "<!-- config-reference:end -->"
	readme   = "../README.md"
)

// readmeSection splits a README around its config reference section.
func readmeSection(text string) (before, section, after string, err error) {
	i := strings.Index(text, refStart)
	j := strings.Index(text, refEnd)
	if i < 0 || j < i {
		return "", "", "", fmt.Errorf("no %s … %s section", refStart, refEnd)
	}
	before, section, after = text[:i+len(refStart)], text[i+len(refStart):j], text[j:]
	return before, strings.TrimPrefix(section, "\n"), after, nil
}

// compareReference says how the README's reference differs from generated,
// naming every row that only one of them has.
func compareReference(readmeText, generated string) error {
	_, section, _, err := readmeSection(readmeText)
	if err != nil {
		return err
	}
	if section == generated {
		return nil
	}
	have, want := strings.Split(section, "\n"), strings.Split(generated, "\n")
	inHave, inWant := map[string]bool{}, map[string]bool{}
	for _, l := range have {
		inHave[l] = true
	}
	for _, l := range want {
		inWant[l] = true
	}
	var b strings.Builder
	for _, l := range want {
		if !inHave[l] {
			fmt.Fprintf(&b, "- README lacks:   %s\n", l)
		}
	}
	for _, l := range have {
		if !inWant[l] {
			fmt.Fprintf(&b, "+ README has:     %s\n", l)
		}
	}
	if b.Len() == 0 {
		b.WriteString("the same rows in another order\n")
	}
	return fmt.Errorf("the README's config reference differs from the config types:\n%s", b.String())
}

// TestREADMEConfigReference fails when the README's config reference is not
// what the config types generate. -update rewrites the section (only it: the
// rest of the README is left as it is).
func TestREADMEConfigReference(t *testing.T) {
	data, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := referenceRows(embeddedSource())
	if err != nil {
		t.Fatal(err)
	}
	gen := renderReference(rows)
	if gen != Reference() {
		t.Fatal("Reference() differs from the rows it is made of")
	}
	if *update {
		before, _, after, err := readmeSection(string(data))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(readme, []byte(before+"\n"+gen+after), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if err := compareReference(string(data), gen); err != nil {
		t.Errorf("%v\nrun: go test ./config -run TestREADMEConfigReference -update", err)
	}
}

// TestReferenceDetectsDrift proves the check above can fail: each case
// changes a copy of the config source or of the README the way a careless
// edit would, and the comparison must name the key concerned.
func TestReferenceDetectsDrift(t *testing.T) {
	readmeText, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name         string
		file         string // "types.go" or "README.md"
		old, new     string
		wantMentions string
	}{
		{"a default changed in a comment", "types.go",
			"// MaxAttempts bounds upstream attempts per round. Default 4.",
			"// MaxAttempts bounds upstream attempts per round. Default 6.", "failover.max_attempts"},
		{"a field added", "types.go",
			"\tPprof bool `yaml:\"pprof\"`\n",
			"\tPprof bool `yaml:\"pprof\"`\n\t// ReadTimeout is new.\n\tReadTimeout Duration `yaml:\"read_timeout\"`\n", "server.read_timeout"},
		{"a key renamed", "types.go", "`yaml:\"sse_keepalive\"`", "`yaml:\"sse_keep_alive\"`", "server.sse_keep_alive"},
		{"a type changed", "types.go", "MaxAttempts int `yaml:\"max_attempts\"`", "MaxAttempts Duration `yaml:\"max_attempts\"`", "failover.max_attempts"},
		{"a secret no longer marked", "types.go", "`yaml:\"apiv3_key\" secret:\"true\"`", "`yaml:\"apiv3_key\"`", "payments.wechatpay.apiv3_key"},
		{"a README row deleted", "README.md", "| `log.level` |", "", "log.level"},
		{"a README default edited", "README.md", "| `failover.max_attempts` | integer | `4` |", "| `failover.max_attempts` | integer | `5` |", "failover.max_attempts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := embeddedSource()
			doc := string(readmeText)
			switch tt.file {
			case "types.go":
				src := string(files["types.go"])
				files["types.go"] = []byte(strings.Replace(src, tt.old, tt.new, 1))
				if string(files["types.go"]) == src {
					t.Fatalf("mutation %q did not apply: config/types.go changed; update this test", tt.old)
				}
			case "README.md":
				mutated := doc
				if tt.new == "" {
					// Delete the whole line.
					mutated = regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(tt.old)+`.*\n`).ReplaceAllString(doc, "")
				} else {
					mutated = strings.Replace(doc, tt.old, tt.new, 1)
				}
				if mutated == doc {
					t.Fatalf("mutation %q did not apply: the README changed; update this test", tt.old)
				}
				doc = mutated
			}
			rows, err := referenceRows(files)
			if err != nil {
				t.Fatal(err)
			}
			err = compareReference(doc, renderReference(rows))
			if err == nil {
				t.Fatal("the README and the mutated copy agree; want a difference")
			}
			if !strings.Contains(err.Error(), "`"+tt.wantMentions+"`") {
				t.Errorf("got %v; want it to name %s", err, tt.wantMentions)
			}
		})
	}
}

// yamlKeys lists every key path of t as the reference writes them, from the
// compiled types: the reference must cover exactly these.
func yamlKeys(t reflect.Type, prefix string, out *[]string) {
	unmarshaler := reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		key := name
		if prefix != "" {
			key = prefix + "." + name
		}
		*out = append(*out, key)
		ft, suffix := f.Type, ""
		switch ft.Kind() {
		case reflect.Slice:
			ft, suffix = ft.Elem(), "[]"
		case reflect.Map:
			ft, suffix = ft.Elem(), ".*"
		}
		if ft.Kind() == reflect.Struct && !reflect.PointerTo(ft).Implements(unmarshaler) {
			yamlKeys(ft, key+suffix, out)
		}
	}
}

// TestReferenceCoversEveryKey: the reference reads types.go and values.go; a
// config type declared in another file would be missing from it. This walks
// the compiled types instead and wants the same keys.
func TestReferenceCoversEveryKey(t *testing.T) {
	rows, err := referenceRows(embeddedSource())
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	yamlKeys(reflect.TypeOf(Config{}), "", &want)
	var got []string
	for _, r := range rows {
		got = append(got, r.Key)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("reference keys differ from the compiled config types:\ngot  %q\nwant %q", got, want)
	}
}

// TestReferenceDescribesEveryKey: a key without a comment is a key nobody
// can use; add a doc comment to its field in types.go.
func TestReferenceDescribesEveryKey(t *testing.T) {
	rows, err := referenceRows(embeddedSource())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.Doc == "" {
			t.Errorf("%s has no description: give its field a doc comment in config/types.go", r.Key)
		}
	}
}

// defaultInDoc finds the value a comment states after "Default ".
var defaultInDoc = regexp.MustCompile(`\bDefault ("[^"]*"|\[[^\]]*\]|\{[^}]*\}|[^\s(]+)`)

// statedDefaultMismatches compares, for every row whose comment states its
// default, that value with the Default column (from SetDefaults).
func statedDefaultMismatches(rows []refRow) (mismatches []string, checked int) {
	for _, r := range rows {
		m := defaultInDoc.FindStringSubmatch(r.Doc)
		if m == nil || r.Default == "" || r.Default == "required" || strings.Contains(r.Default, "built in") {
			continue
		}
		stated := strings.TrimRight(m[1], ".,;:")
		if !sameDefault(r.Type, stated, r.Default) {
			mismatches = append(mismatches, fmt.Sprintf("%s: the comment says Default %s; SetDefaults gives %s", r.Key, stated, r.Default))
		}
		checked++
	}
	return mismatches, checked
}

// TestReferenceDefaultsMatchComments: where a field's comment states its
// default, it must be the default SetDefaults gives, or the reference would
// show two answers.
func TestReferenceDefaultsMatchComments(t *testing.T) {
	rows, err := referenceRows(embeddedSource())
	if err != nil {
		t.Fatal(err)
	}
	bad, checked := statedDefaultMismatches(rows)
	for _, m := range bad {
		t.Error(m)
	}
	if checked < 40 {
		t.Errorf("checked %d stated defaults; the comments state more (is the pattern broken?)", checked)
	}

	// And it can fail: a comment that states another default than the code.
	files := embeddedSource()
	src := string(files["types.go"])
	files["types.go"] = []byte(strings.Replace(src, "per round. Default 4.", "per round. Default 6.", 1))
	if string(files["types.go"]) == src {
		t.Fatal("mutation did not apply: config/types.go changed; update this test")
	}
	rows, err = referenceRows(files)
	if err != nil {
		t.Fatal(err)
	}
	bad, _ = statedDefaultMismatches(rows)
	if len(bad) != 1 || !strings.HasPrefix(bad[0], "failover.max_attempts:") {
		t.Errorf("got mismatches %q; want one for failover.max_attempts", bad)
	}
}

func sameDefault(typ, stated, computed string) bool {
	computed = strings.Trim(computed, "`")
	if typ == "duration" {
		a, errA := ParseDuration(stated)
		b, errB := time.ParseDuration(computed)
		return errA == nil && errB == nil && a == b
	}
	if u, err := strconv.Unquote(stated); err == nil && !strings.HasPrefix(computed, `"`) {
		stated = u
	}
	if computed == `""` {
		computed = ""
	}
	if stated == `""` {
		stated = ""
	}
	return stated == computed
}

func TestSameDefault(t *testing.T) {
	tests := []struct {
		name, typ, stated, computed string
		want                        bool
	}{
		{"duration units", "duration", "300s", "`5m`", true},
		{"duration zero", "duration", "0", "`0s`", true},
		{"duration differs", "duration", "5s", "`10s`", false},
		{"quoted string", "string", `"127.0.0.1:8080"`, "`127.0.0.1:8080`", true},
		{"empty string", "string", `""`, "`\"\"`", true},
		{"decimal", "decimal", `"500.00"`, "`\"500.00\"`", true},
		{"integer differs", "integer", "4", "`6`", false},
		{"list", "list of strings", `["127.0.0.1:6379"]`, "`[\"127.0.0.1:6379\"]`", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sameDefault(tt.typ, tt.stated, tt.computed); got != tt.want {
				t.Errorf("sameDefault(%q, %q, %q) = %v; want %v", tt.typ, tt.stated, tt.computed, got, tt.want)
			}
		})
	}
}

// TestReferenceNamedTypes: a named type over a basic one ("type Level
// string") is described as that basic type; an unknown type is an error,
// not a silent gap.
func TestReferenceNamedTypes(t *testing.T) {
	tests := []struct {
		name, old, new string
		wantType       string
		wantErr        string
	}{
		{"named string", "\tLevel string `yaml:\"level\"`\n}", "\tLevel LogLevel `yaml:\"level\"`\n}\n\ntype LogLevel string", "string", ""},
		{"type from elsewhere", "\tLevel string `yaml:\"level\"`", "\tLevel slog.Level `yaml:\"level\"`", "", "log.level: type slog.Level"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := embeddedSource()
			src := string(files["types.go"])
			files["types.go"] = []byte(strings.Replace(src, tt.old, tt.new, 1))
			if string(files["types.go"]) == src {
				t.Fatal("mutation did not apply: config/types.go changed; update this test")
			}
			rows, err := referenceRows(files)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("got error %v; want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rows {
				if r.Key == "log.level" && r.Type != tt.wantType {
					t.Errorf("log.level type %q; want %q", r.Type, tt.wantType)
				}
			}
		})
	}
}
