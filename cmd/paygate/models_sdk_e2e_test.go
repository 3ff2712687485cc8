package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"

	openai "github.com/sashabaranov/go-openai"

	"github.com/paygate/paygate/proxy/h1/h1test"
)

// TestModelsWithSDKs: the models endpoints as go-openai and the Node openai
// SDK read them, for public names OpenRouter-style ("openai/gpt-4o",
// "deepseek/deepseek-chat:free"), with a dot, a space and CJK, and one
// equal to another model's upstream name. Both SDKs list exactly the
// config's names in OpenAI's shape (object "model", created, owned_by
// "paygate"); retrieve each by name, whether the SDK escapes a "/" (Node:
// %2F) or not (go-openai); get a 404 model_not_found for an upstream name;
// and have models.delete refused with a 405. No provider is asked.
func TestModelsWithSDKs(t *testing.T) {
	var asked atomic.Int64
	up := h1test.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"object":"list","data":[{"id":"gpt-4o-mini","object":"model","owned_by":"openai"}]}`)
	}))
	t.Cleanup(up.Close)
	names := []string{"openai/gpt-4o", "deepseek/deepseek-chat:free", "qwen2.5-72b", "My Model", "模型", "gpt-4o-mini"}
	src := `
clients: [{name: bot, key: ` + e2eClientKey + `}]
store: {path: "` + filepath.Join(t.TempDir(), "paygate.db") + `"}
providers:
  - {name: fake, base_url: "` + up.URL + `/v1", api_key: sk-upstream}
models:
  - {name: "openai/gpt-4o", targets: [{provider: fake, model: gpt-4o-mini}]}
  - {name: "deepseek/deepseek-chat:free", targets: [{provider: fake, model: deepseek-chat}]}
  - {name: "qwen2.5-72b", targets: [{provider: fake, model: Qwen/Qwen2.5-72B-Instruct}]}
  - {name: "My Model", targets: [{provider: fake, model: m1}]}
  - {name: "模型", targets: [{provider: fake, model: m2}]}
  - {name: "gpt-4o-mini", targets: [{provider: fake, model: gpt-4o}]}
`
	url, _ := serveConfig(t, src, io.Discard)

	oc := openai.DefaultConfig(e2eClientKey)
	oc.BaseURL = url + "/v1"
	c := openai.NewClientWithConfig(oc)
	ctx := context.Background()
	list, err := c.ListModels(ctx)
	if err != nil {
		t.Fatalf("ListModels: %v", err)
	}
	if len(list.Models) != len(names) {
		t.Errorf("ListModels: %d models %+v; want %d", len(list.Models), list.Models, len(names))
	}
	for i, m := range list.Models {
		if i < len(names) && (m.ID != names[i] || m.Object != "model" || m.OwnedBy != "paygate" || m.CreatedAt == 0) {
			t.Errorf("ListModels[%d] = %+v; want %q, object model, owned_by paygate, created", i, m, names[i])
		}
	}
	for _, n := range names {
		if m, err := c.GetModel(ctx, n); err != nil || m.ID != n || m.Object != "model" {
			t.Errorf("go-openai GetModel(%q) = %+v, %v; want the model", n, m, err)
		}
	}
	var apiErr *openai.APIError
	if _, err := c.GetModel(ctx, "deepseek-chat"); !errors.As(err, &apiErr) || apiErr.HTTPStatusCode != 404 || apiErr.Code != "model_not_found" {
		t.Errorf("go-openai GetModel of an upstream name: %v; want 404 model_not_found", err)
	}
	if _, err := c.DeleteFineTuneModel(ctx, "openai/gpt-4o"); !errors.As(err, &apiErr) || apiErr.HTTPStatusCode != 405 {
		t.Errorf("go-openai DeleteFineTuneModel: %v; want 405", err)
	}

	dir, _ := filepath.Abs("../../test/node")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "openai")); err != nil {
		t.Fatalf("the Node openai package is missing: run `npm ci --prefix test/node`: %v", err)
	}
	cmd := exec.Command("node", "chat.mjs", "models")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PAYGATE_URL="+url+"/v1", "PAYGATE_KEY="+e2eClientKey, "PAYGATE_MODEL_UNKNOWN=Qwen/Qwen2.5-72B-Instruct")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node models: %v %s", err, out)
	}
	type caught struct {
		Ok     *struct{ ID, Object string }
		Status int
		Code   string
	}
	var res struct {
		Listed []struct {
			ID      string `json:"id"`
			Object  string `json:"object"`
			OwnedBy string `json:"owned_by"`
			Created int64  `json:"created"`
		}
		Retrieved        []caught
		Unknown, Deleted caught
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("node output %s: %v", out, err)
	}
	if len(res.Listed) != len(names) || len(res.Retrieved) != len(names) {
		t.Fatalf("Node models: %s; want %d listed and retrieved", out, len(names))
	}
	for i, n := range names {
		if l, r := res.Listed[i], res.Retrieved[i]; l.ID != n || l.Object != "model" || l.OwnedBy != "paygate" || l.Created == 0 || r.Ok == nil || r.Ok.ID != n {
			t.Errorf("Node models.list()[%d] %+v, models.retrieve: %+v; want %q", i, l, r, n)
		}
	}
	if res.Unknown.Status != 404 || res.Unknown.Code != "model_not_found" {
		t.Errorf("Node models.retrieve of an upstream name: %+v; want 404 model_not_found (%s)", res.Unknown, out)
	}
	if res.Deleted.Status != 405 || res.Deleted.Code != "method_not_allowed" {
		t.Errorf("Node models.delete: %+v; want 405 method_not_allowed (%s)", res.Deleted, out)
	}
	if n := asked.Load(); n != 0 {
		t.Errorf("the provider was asked %d times; want 0", n)
	}
}
