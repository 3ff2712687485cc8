package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"unsafe"

	"github.com/tidwall/gjson"

	"github.com/paygate/paygate/accounting"
	"github.com/paygate/paygate/failover"
	"github.com/paygate/paygate/interceptors"
	"github.com/paygate/paygate/payments"
	"github.com/paygate/paygate/sse"
)

// headerOpenID names the end user; the bot vouches for it (SPEC 2.2).
const headerOpenID = "X-WeChat-OpenID"

// readBody reads the whole client body (failover may resend it) within the
// configured limit.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, *apiError) {
	limit := s.cfg.Server.MaxBodyBytes
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &apiError{Status: http.StatusRequestEntityTooLarge, Type: "invalid_request_error",
				Message: "paygate: request body over " + strconv.FormatInt(limit, 10) + " bytes (server.max_body_bytes)"}
		}
		return nil, badRequest("paygate: reading the request body: " + err.Error())
	}
	return body, nil
}

func (s *Server) handleChat(w http.ResponseWriter, r *http.Request) {
	rc := reqInfo(r)
	body, aerr := s.readBody(w, r)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	chat, err := interceptors.ReadChat(body)
	if err != nil {
		writeError(w, badRequest(err.Error()))
		return
	}
	if !s.up.HasModel(chat.Model) {
		writeError(w, &apiError{Status: http.StatusNotFound, Type: "invalid_request_error", Code: "model_not_found", Param: "model",
			Message: "The model `" + chat.Model + "` does not exist on this paygate. GET /v1/models lists the configured models."})
		return
	}
	user := r.Header.Get(headerOpenID)
	if user == "" {
		user = chat.User
	}
	out, err := interceptors.RewriteChat(body, chat, interceptors.Upstream{
		Client: rc.client.Name, EndUser: user, Privacy: s.privacy, ForceUsage: true,
	})
	if err != nil {
		writeError(w, badRequest(err.Error()))
		return
	}
	if s.tools != nil && user != "" {
		session := r.Header.Get("X-Paygate-Session")
		if session == "" {
			session = user
		}
		c := rc.client
		s.runTurn(w, r, chat, out, payments.Caller{Client: c.Name, AppID: c.AppID, User: user, Session: session, AllowedSKUs: c.AllowedSKUs})
		return
	}
	resp, err := s.up.Open(r.Context(), &failover.Request{
		Model:       chat.Model,
		Method:      http.MethodPost,
		Path:        "/chat/completions",
		Body:        out,
		Stream:      chat.Stream,
		ContentType: "application/json",
		Accept:      r.Header.Get("Accept"),
	})
	if err != nil {
		s.failTurn(w, r, err)
		return
	}
	defer resp.Close()
	setPaygateHeaders(w.Header(), resp)
	var u accounting.Usage
	if !chat.Stream {
		writeUpstreamBody(w, resp)
		res := gjson.GetManyBytes(resp.Body, "usage.prompt_tokens", "usage.completion_tokens")
		u = accounting.Usage{PromptTokens: res[0].Int(), CompletionTokens: res[1].Int()}
	} else {
		u = s.streamRound(w, r, resp, !chat.WantsUsage)
	}
	if s.ledger != nil {
		s.ledger.Turn(r.Context(), rc.client.Name, "", s.ledger.Round(resp.Provider, resp.Model, u))
	}
}

// failTurn answers a turn that got no upstream answer at all.
func (s *Server) failTurn(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		// The client left; nobody reads an answer. 499 is for the metrics only.
		w.WriteHeader(499)
		return
	}
	ae := toAPIError(err)
	s.log.Warn("turn failed before any byte reached the client",
		"request_id", reqInfo(r).id, "status", ae.Status, "err", err)
	writeError(w, ae)
}

func setPaygateHeaders(h http.Header, resp *failover.Response) {
	h.Set("X-Paygate-Provider", resp.Provider)
	h.Set("X-Paygate-Attempts", strconv.Itoa(resp.Attempts))
}

func writeUpstreamBody(w http.ResponseWriter, resp *failover.Response) {
	ct := resp.Header.Get("Content-Type")
	if ct == "" {
		ct = "application/json"
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(resp.Body)
}

// streamRound relays one upstream stream to the client, event by event, each
// flushed. withholdUsage drops the usage-only chunk paygate asked for on its
// own account.
func (s *Server) streamRound(w http.ResponseWriter, r *http.Request, resp *failover.Response, withholdUsage bool) (u accounting.Usage) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	sw := sse.NewWriter(w)
	for {
		ev, err := resp.Next()
		if errors.Is(err, io.EOF) {
			_ = sw.Done()
			return
		}
		if err != nil {
			s.endStreamWithError(sw, r, err)
			return
		}
		if ev.IsDone() {
			_ = sw.Done()
			return
		}
		if isUsageOnly(ev.Data) {
			// The last chunk: read it for accounting (one small scan per stream).
			res := gjson.GetManyBytes(ev.Data, "usage.prompt_tokens", "usage.completion_tokens")
			u = accounting.Usage{PromptTokens: res[0].Int(), CompletionTokens: res[1].Int()}
			if withholdUsage {
				continue
			}
		}
		if err := sw.Data(ev.Data); err != nil {
			// The client is gone; returning cancels the upstream request.
			return
		}
	}
}

// endStreamWithError tells the client why its stream stops: an OpenAI-style
// error event, never a silent cut and never a [DONE] after a cut.
func (s *Server) endStreamWithError(sw *sse.Writer, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		return
	}
	ae := &apiError{Type: "upstream_error", Message: "paygate: " + err.Error()}
	var se *failover.StreamError
	if errors.As(err, &se) {
		ae.Code = se.Cause
	}
	s.log.Warn("stream ended by an upstream failure after the first byte",
		"request_id", reqInfo(r).id, "err", err)
	_ = sw.Data(errorJSON(ae))
}

var usageKey = []byte(`"usage"`)

// isUsageOnly reports a chunk with empty choices and a usage object: the last
// chunk of a stream with include_usage. The bytes.Contains pre-check keeps the
// common chunk free of any JSON scan.
func isUsageOnly(data []byte) bool {
	if !bytes.Contains(data, usageKey) {
		return false
	}
	s := unsafe.String(unsafe.SliceData(data), len(data))
	res := gjson.GetMany(s, "choices.#", "usage")
	return res[0].Int() == 0 && res[1].IsObject()
}
