package config

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
)

// TestREADMEExampleConfigsLoad: every YAML block of the README is a config
// a reader copies; each must load, with the variables it reads from the
// environment (the README tells the reader to export them) set.
func TestREADMEExampleConfigsLoad(t *testing.T) {
	blocks := fencedBlocks(string(mustRead(t, readme)), "yaml")
	if len(blocks) == 0 {
		t.Fatal("no ```yaml block in the README: the extraction is broken, or the examples moved")
	}
	for _, b := range blocks {
		t.Run(fmt.Sprintf("line %d", b.line), func(t *testing.T) {
			env := map[string]string{}
			for _, m := range envRef.FindAllStringSubmatch(b.text, -1) {
				env[m[1]] = "sk-readme-example-" + strings.ToLower(m[1])
			}
			if _, err := Parse([]byte(b.text), fmt.Sprintf("README.md:%d", b.line), envMap(env)); err != nil {
				t.Errorf("the README's example config at line %d does not load with %v set:\n%v", b.line, env, err)
			}
		})
	}
}

// envRef is a ${NAME} or ${NAME:-…} in a config.
var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-[^}]*)?\}`)

type fencedBlock struct {
	line int // the line of its first line of text
	text string
}

// fencedBlocks is the text of every ```lang block of a Markdown document.
func fencedBlocks(md, lang string) []fencedBlock {
	var out []fencedBlock
	var cur *fencedBlock
	for i, l := range strings.Split(md, "\n") {
		switch {
		case cur == nil && strings.TrimSpace(l) == "```"+lang:
			cur = &fencedBlock{line: i + 2}
		case cur != nil && strings.TrimSpace(l) == "```":
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			cur.text += l + "\n"
		}
	}
	return out
}
