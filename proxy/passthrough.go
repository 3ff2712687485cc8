package proxy

import (
	"net/http"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/failover"
	"github.com/paygate/paygate/interceptors"
)

// handlePassthrough forwards every other /v1/* path (embeddings, moderations,
// …) to the targets of the body's model with the same failover, moving only
// between targets that serve the same upstream model: vectors of two models
// never mix.
func (s *Server) handlePassthrough(w http.ResponseWriter, r *http.Request) {
	body, aerr := s.readBody(w, r)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	model := ""
	ct := r.Header.Get("Content-Type")
	if len(body) > 0 && strings.HasPrefix(ct, "application/json") {
		if !gjson.ValidBytes(body) {
			writeError(w, badRequest("paygate: the body is not valid JSON"))
			return
		}
		res := gjson.GetManyBytes(body, "model", "stream", "user")
		model = res[0].Str
		if res[1].Bool() {
			writeError(w, badRequest("paygate: streaming is served on /v1/chat/completions only"))
			return
		}
		if res[2].Exists() {
			// The end user's OpenID never reaches a provider (SPEC 2.2), on
			// any path: "user" is the one field paygate rewrites here.
			user := openID(r.Header)
			if user == "" {
				user = res[2].Str
			}
			var err error
			body, err = interceptors.RewriteChat(body, interceptors.Chat{}, interceptors.Upstream{
				Client: reqInfo(r).client.Name, EndUser: user, Privacy: s.privacy,
			})
			if err != nil {
				writeError(w, badRequest("paygate: "+err.Error()))
				return
			}
		}
		if model != "" && !s.up.HasModel(model) {
			writeError(w, &apiError{Status: http.StatusNotFound, Type: "invalid_request_error", Code: "model_not_found", Param: "model",
				Message: "The model `" + model + "` does not exist on this paygate."})
			return
		}
	}
	path := strings.TrimPrefix(r.URL.Path, "/v1")
	if r.URL.RawQuery != "" {
		path += "?" + r.URL.RawQuery
	}
	resp, err := s.up.Open(r.Context(), &failover.Request{
		Model:             model,
		Method:            r.Method,
		Path:              path,
		Body:              body,
		ContentType:       ct,
		Accept:            r.Header.Get("Accept"),
		SameUpstreamModel: true,
	})
	if err != nil {
		s.failTurn(w, r, err)
		return
	}
	defer resp.Close()
	setPaygateHeaders(w.Header(), resp)
	writeUpstreamBody(w, resp)
}
