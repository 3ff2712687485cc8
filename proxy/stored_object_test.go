package proxy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	openai "github.com/sashabaranov/go-openai"

	"github.com/paygate/paygate/config"
)

// TestStoredObjectOfAnotherModelsProvider: a call that names a stored
// object in its path and no model (a fine-tuning job's retrieval or
// cancel, a Response's retrieval) is routed to the first model's targets,
// but the object was made by the provider of the model its creation
// named. That provider was never asked: the bot got the first model's
// provider's 404 for an object that exists. A 404 from every target of
// the first model now moves on to the providers of the other models, and
// the bot gets a 404 only when every provider said so; a create that
// names no stored object is not sent on.
func TestStoredObjectOfAnotherModelsProvider(t *testing.T) {
	notFound := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"error":{"message":"No such object: `+r.URL.Path+`","type":"invalid_request_error","param":"id","code":null}}`)
	}
	first := newFakeProvider(t, notFound)
	const job = `{"id":"ftjob-b1","object":"fine_tuning.job","model":"vendor/embed","status":"%s"}`
	second := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.Method + " " + r.URL.Path {
		case "POST /v1/fine_tuning/jobs", "GET /v1/fine_tuning/jobs/ftjob-b1":
			_, _ = io.WriteString(w, strings.Replace(job, "%s", "running", 1))
		case "POST /v1/fine_tuning/jobs/ftjob-b1/cancel":
			_, _ = io.WriteString(w, strings.Replace(job, "%s", "cancelled", 1))
		case "GET /v1/responses/resp_b1":
			_, _ = io.WriteString(w, `{"id":"resp_b1","object":"response","status":"completed","output":[]}`)
		case "GET /v1/files/file-locked":
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, `{"error":{"message":"Your key lacks the files scope","type":"invalid_request_error","code":null}}`)
		default:
			notFound(w, r)
		}
	})
	cfg := testConfig(t, first.URL, func(c *config.Config) {
		b := c.Providers[0]
		b.Name, b.BaseURL = "second", second.URL+"/v1"
		c.Providers = append(c.Providers, b)
		c.Models[1].Targets = []config.Target{{Provider: "second", Model: "vendor/embed"}}
	})
	proxyURL, _ := newTestProxy(t, cfg)
	c := sdkClient(proxyURL)
	ctx := context.Background()
	if j, err := c.CreateFineTuningJob(ctx, openai.FineTuningJobRequest{TrainingFile: "file-t", Model: "embed-test"}); err != nil || j.ID != "ftjob-b1" {
		t.Fatalf("CreateFineTuningJob: %+v, %v; want ftjob-b1 from the second provider", j, err)
	}
	if j, err := c.RetrieveFineTuningJob(ctx, "ftjob-b1"); err != nil || j.ID != "ftjob-b1" || j.Status != "running" {
		t.Errorf("RetrieveFineTuningJob: %+v, %v; want the second provider's running job", j, err)
	}
	if j, err := c.CancelFineTuningJob(ctx, "ftjob-b1"); err != nil || j.Status != "cancelled" {
		t.Errorf("CancelFineTuningJob: %+v, %v; want the second provider's cancelled job", j, err)
	}
	resp := send(t, http.MethodGet, proxyURL, "/v1/responses/resp_b1", "", map[string]string{"Authorization": "Bearer " + testClientKey})
	if b := readAll(t, resp.Body); resp.StatusCode != 200 || resp.Header.Get("X-Paygate-Provider") != "second" || !strings.Contains(b, `"resp_b1"`) {
		t.Errorf("GET /v1/responses/resp_b1: %d from %q: %s; want the second provider's Response", resp.StatusCode, resp.Header.Get("X-Paygate-Provider"), b)
	}

	// Nowhere: the 404 of a provider, after both were asked.
	before := [2]int{len(first.requests()), len(second.requests())}
	var apiErr *openai.APIError
	if _, err := c.RetrieveFineTuningJob(ctx, "ftjob-gone"); !errors.As(err, &apiErr) || apiErr.HTTPStatusCode != 404 ||
		!strings.Contains(apiErr.Message, "No such object: /v1/fine_tuning/jobs/ftjob-gone") {
		t.Errorf("RetrieveFineTuningJob of no job: %v; want a provider's 404", err)
	}
	if got := [2]int{len(first.requests()) - before[0], len(second.requests()) - before[1]}; got != [2]int{1, 1} {
		t.Errorf("a missing job was asked of first %d, second %d times; want once each", got[0], got[1])
	}

	// Nowhere, the second provider refusing the call: the first
	// provider's 404, from it, counting both rounds' attempts (the
	// operator reads two asked, not one).
	before = [2]int{len(first.requests()), len(second.requests())}
	resp = send(t, http.MethodGet, proxyURL, "/v1/files/file-locked", "", map[string]string{"Authorization": "Bearer " + testClientKey})
	if b := readAll(t, resp.Body); resp.StatusCode != 404 || !strings.Contains(b, "No such object") {
		t.Errorf("GET /v1/files/file-locked: %d %s; want the first provider's 404", resp.StatusCode, b)
	}
	if got := [2]int{len(first.requests()) - before[0], len(second.requests()) - before[1]}; got != [2]int{1, 1} {
		t.Errorf("a file the second provider refused was asked of first %d, second %d times; want once each", got[0], got[1])
	}
	if p, n := resp.Header.Get("X-Paygate-Provider"), resp.Header.Get("X-Paygate-Attempts"); p != "fake" || n != "2" {
		t.Errorf("X-Paygate-Provider %q, X-Paygate-Attempts %q; want fake, whose 404 it is, and 2, both rounds' attempts", p, n)
	}

	// A create that names no stored object stays with the first model's
	// targets: a batch is not made on the provider of another model.
	before = [2]int{len(first.requests()), len(second.requests())}
	if _, err := c.CreateBatch(ctx, openai.CreateBatchRequest{InputFileID: "file-t", Endpoint: openai.BatchEndpointChatCompletions,
		CompletionWindow: "24h"}); !errors.As(err, &apiErr) || apiErr.HTTPStatusCode != 404 {
		t.Errorf("CreateBatch: %v; want the first provider's 404", err)
	}
	if got := [2]int{len(first.requests()) - before[0], len(second.requests()) - before[1]}; got != [2]int{1, 0} {
		t.Errorf("a batch was sent to first %d, second %d times; want the first alone", got[0], got[1])
	}
}
