package failover

import (
	"errors"
	"io"
	"testing"
)

// TestProviderErrorParam: a provider's error names the request parameter at
// fault (OpenAI's error.param, "temperature"); SDKs expose it as err.param
// and bots branch on it. It used to be dropped, so the client always read
// null. It is now carried, as a string (null, absent or anything else:
// none), from the failure to UpstreamError.Param and, for an error object
// after the first token, to StreamError.Param.
func TestProviderErrorParam(t *testing.T) {
	t.Parallel()
	withParam := func(param string) string {
		return `{"error":{"message":"Invalid value","type":"invalid_request_error","param":` + param + `,"code":"invalid_value"}}`
	}
	tests := []struct {
		name      string
		a         func(c *fconn, n int)
		stream    bool
		wantParam string
	}{
		{"a 400 naming the parameter", always(statusFn(400, withParam(`"temperature"`))), false, "temperature"},
		{"param null", always(statusFn(400, withParam(`null`))), false, ""},
		{"param not a string", always(statusFn(400, withParam(`["temperature"]`))), false, ""},
		{"no param", always(statusFn(400, errBody("invalid_request_error", "invalid_value", "Invalid value"))), false, ""},
		{"an error object as the first event", always(firstEvent(withParam(`"messages[0].content"`))), true, "messages[0].content"},
		{"a 404 on every target", always(statusFn(404, `{"error":{"message":"No such File object: f","type":"invalid_request_error","param":"id","code":null}}`)),
			false, "id"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, map[string]func(*fconn, int){"a": tc.a}, []string{"a"}, nil)
			got := e.open(t.Context(), tc.stream)
			var ue *UpstreamError
			if !errors.As(got.openErr, &ue) {
				t.Fatalf("Open: %v; want an *UpstreamError", got.openErr)
			}
			if ue.Param != tc.wantParam {
				t.Errorf("Param %q; want %q (%d %s)", ue.Param, tc.wantParam, ue.Status, ue.Message)
			}
		})
	}

	t.Run("an error object after the first token", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, map[string]func(*fconn, int){"a": always(func(c *fconn) {
			c.sse()
			c.event(contentChunk("Partial"))
			c.event(`{"error":{"message":"Output data may contain inappropriate content.","type":"data_inspection_failed","param":"messages","code":"data_inspection_failed"}}`)
			c.done()
		})}, []string{"a"}, nil)
		got := e.open(t.Context(), true)
		var se *StreamError
		if got.openErr != nil || !errors.As(got.end, &se) || errors.Is(got.end, io.EOF) {
			t.Fatalf("Open %v, stream end %v; want a *StreamError", got.openErr, got.end)
		}
		if se.Param != "messages" || se.Code != "data_inspection_failed" {
			t.Errorf("StreamError Param %q Code %q; want the provider's \"messages\", \"data_inspection_failed\"", se.Param, se.Code)
		}
	})
}
