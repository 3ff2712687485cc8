package proxy

import (
	"encoding/json"
	"net/http"
	"testing"
)

// wireError is an OpenAI error body as an SDK reads it: param and code may
// be null (nil here).
type wireError struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

func decodeWireError(t *testing.T, body string) wireError {
	t.Helper()
	var e struct {
		Error *wireError `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == nil {
		t.Fatalf("body %s is not an OpenAI error: %v", body, err)
	}
	return *e.Error
}

func str(p *string) string {
	if p == nil {
		return "<null>"
	}
	return *p
}

// TestProviderNotFoundStaysNotFound: files.retrieve("file-nope") used to
// get a 502 upstream_model_not_found, which SDKs retry and never raise as
// NotFoundError; so did a chat completion whose every target's model was
// gone. When every target answered 404, the bot gets the provider's 404
// with its message, type and code, after one request per target.
func TestProviderNotFoundStaysNotFound(t *testing.T) {
	tests := []struct {
		name, method, path, body string
		provider                 string
		wantType, wantCode       string
		wantMsg                  string
	}{
		{"files.retrieve", http.MethodGet, "/v1/files/file-nope", "",
			`{"error":{"message":"No such File object: file-nope","type":"invalid_request_error","param":"id","code":null}}`,
			"invalid_request_error", "<null>", "No such File object: file-nope"},
		{"batches.retrieve, a bare 404", http.MethodGet, "/v1/batches/batch_nope", "", `{"detail":"Not Found"}`,
			"invalid_request_error", "<null>", "provider fake: not found (HTTP 404)"},
		{"chat completion of a model gone upstream", http.MethodPost, "/v1/chat/completions",
			`{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}`,
			`{"error":{"message":"The model vendor/upstream-model does not exist","type":"invalid_request_error","param":null,"code":"model_not_found"}}`,
			"invalid_request_error", "model_not_found", "The model vendor/upstream-model does not exist"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, jsonHandler(404, tc.provider))
			url, _ := newTestProxy(t, testConfig(t, fp.URL, nil))
			var resp *http.Response
			if tc.method == http.MethodGet {
				resp = clientReq(t, tc.method, url+tc.path, nil, nil)
			} else {
				resp = post(t, url, tc.path, tc.body, nil)
			}
			b := readAll(t, resp.Body)
			e := decodeWireError(t, b)
			if resp.StatusCode != http.StatusNotFound || e.Type != tc.wantType || str(e.Code) != tc.wantCode || e.Message != tc.wantMsg {
				t.Errorf("got %d %s; want 404 type %q code %s message %q", resp.StatusCode, b, tc.wantType, tc.wantCode, tc.wantMsg)
			}
			if n := len(fp.requests()); n != 1 {
				t.Errorf("provider saw %d requests; want 1 (a 404 is not retried)", n)
			}
		})
	}
}
