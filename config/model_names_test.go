package config

import (
	"fmt"
	"testing"
)

// TestModelNamesTheModelsRouteServes: a bot's SDK retrieves a model with
// GET /v1/models/{name}, and go-openai puts the name in the path
// unescaped ("/" and all), so the router cleans an empty, "." or ".." segment
// out of it before any handler sees it (a redirect to another path, a 404
// or another model's object); a "?" or "#" ends the path there, a "%"
// starts an escape, and a control character fails go-openai's URL. Such
// a public name was listed by GET /v1/models but could not be retrieved;
// config refuses it at its line.
// Names with "/" (OpenRouter's), dots within a segment, or a trailing "/"
// still load.
func TestModelNamesTheModelsRouteServes(t *testing.T) {
	const refused = `cannot be retrieved by GET /v1/models/{name}: the router cleans an empty, "." or ".." segment out of the path (go-openai does not escape "/"); choose another name`
	const unescaped = `cannot be retrieved by GET /v1/models/{name}: go-openai puts the name in the URL unescaped, where "?" and "#" end the path, "%" starts an escape and a control character is refused; choose another name`
	tests := []struct {
		name, model string
		want        string // the error; "" when it loads
	}{
		{"empty segment", "openai//gpt-4o", `c.yaml:3: models[0].name: "openai//gpt-4o" ` + refused},
		{"leading slash", "/gpt-4o", `c.yaml:3: models[0].name: "/gpt-4o" ` + refused},
		{"dot", ".", `c.yaml:3: models[0].name: "." ` + refused},
		{"dot dot", "..", `c.yaml:3: models[0].name: ".." ` + refused},
		{"dot segment", "a/./b", `c.yaml:3: models[0].name: "a/./b" ` + refused},
		{"dot dot segment", "a/../b", `c.yaml:3: models[0].name: "a/../b" ` + refused},
		{"trailing dot dot", "a/..", `c.yaml:3: models[0].name: "a/.." ` + refused},
		{"query", "gpt-4o?turbo", `c.yaml:3: models[0].name: "gpt-4o?turbo" ` + unescaped},
		{"fragment", "gpt#4", `c.yaml:3: models[0].name: "gpt#4" ` + unescaped},
		{"percent", "50%off", `c.yaml:3: models[0].name: "50%off" ` + unescaped},
		{"an escape", "gpt%2D4o", `c.yaml:3: models[0].name: "gpt%2D4o" ` + unescaped},
		{"control character", "gpt\x7f4o", `c.yaml:3: models[0].name: "gpt\x7f4o" ` + unescaped},
		{"OpenRouter's", "deepseek/deepseek-chat:free", ""},
		{"dots within", "qwen2.5-72b", ""},
		{"three dots", "...", ""},
		{"trailing slash", "vendor/", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := fmt.Sprintf("providers: [{name: p, base_url: http://x/v1}]\nmodels:\n  - name: %q\n    targets: [{provider: p, model: x}]\n", tt.model)
			loadsOrRefused(t, src, tt.want, func(c *Config) string { return "model " + c.Models[0].Name })
		})
	}
}

// TestModelNamesWithoutSurroundingSpace: a public name with a leading or
// trailing space (a quoted "gpt-4o ", a no-break space pasted from a web
// page, a variable read from a file with CRLF line ends) loaded without a
// word, and every bot that sent the name it meant got 404 model_not_found
// while GET /v1/models listed what looked like the same name. Config
// refuses it at its line; a space within a name still loads.
func TestModelNamesWithoutSurroundingSpace(t *testing.T) {
	const refused = `has a leading or trailing space, which the bots would have to send too: remove it`
	tests := []struct {
		name, model string
		want        string // the error; "" when it loads
	}{
		{"trailing space", "gpt-4o ", `c.yaml:3: models[0].name: "gpt-4o " ` + refused},
		{"leading space", " gpt-4o", `c.yaml:3: models[0].name: " gpt-4o" ` + refused},
		{"carriage return", "gpt-4o\r", `c.yaml:3: models[0].name: "gpt-4o\r" ` + refused},
		{"tab", "gpt-4o\t", `c.yaml:3: models[0].name: "gpt-4o\t" ` + refused},
		{"no-break space", "gpt-4o\u00a0", `c.yaml:3: models[0].name: "gpt-4o\u00a0" ` + refused},
		{"a space within", "My Model", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := fmt.Sprintf("providers: [{name: p, base_url: http://x/v1}]\nmodels:\n  - name: %q\n    targets: [{provider: p, model: x}]\n", tt.model)
			loadsOrRefused(t, src, tt.want, func(c *Config) string { return fmt.Sprintf("model %q", c.Models[0].Name) })
		})
	}
}
