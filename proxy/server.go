package proxy

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paygate/paygate/accounting"
	"github.com/paygate/paygate/config"
	"github.com/paygate/paygate/failover"
	"github.com/paygate/paygate/interceptors"
	"github.com/paygate/paygate/internal/httpwire"
	"github.com/paygate/paygate/internal/jsonstr"
	"github.com/paygate/paygate/logging"
	"github.com/paygate/paygate/proxy/h1"
	"github.com/paygate/paygate/store"
)

// Upstream is what the turn needs from failover: one round to a model's
// targets. *failover.Router implements it.
type Upstream interface {
	Open(ctx context.Context, req *failover.Request) (*failover.Response, error)
	HasModel(name string) bool
	Models() []string
}

var _ Upstream = (*failover.Router)(nil)

// Pinger reports whether a dependency (the store) is reachable, for /readyz.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Options are the server's dependencies. Config, Upstream and Logger are
// required; the rest may be nil.
type Options struct {
	Config   *config.Config
	Upstream Upstream
	Logger   *slog.Logger
	// Registry receives paygate's metrics and is served at /metrics.
	Registry *prometheus.Registry
	// Store is pinged by /readyz; nil means no store to check.
	Store Pinger
	// HashKey keys the user hash toward providers (privacy.forward_user:
	// hash). Empty under hash, it is still to come from the store
	// (SetHashKey), and requests go without the end user's identifiers
	// until it does.
	HashKey []byte
	// WantHashKey, when set, is called while the hash key is still to
	// come and the store is found answering (a /readyz ping, a turn's
	// state load): the cue to ask the store for the key now rather than
	// at its loader's next retry, up to 30 s away after an outage.
	WantHashKey func()
	// Notify serves POST /wechatpay/notify; nil leaves the route unmounted.
	Notify http.Handler
	// Ledger prices rounds and keeps conversation costs; nil: no accounting.
	Ledger *accounting.Ledger
	// Tools executes payment tool calls; nil offers no payment tools.
	Tools PaymentTools
	// State holds the users' payment state; nil: turns carry no state.
	State StateStore
	// Reconciler refreshes pending orders before a turn; nil: no refresh.
	Reconciler Reconciler
	// UserPayments serves /v1/paygate/orders and the refund answers; nil:
	// those routes answer 404.
	UserPayments UserPayments
	// AdminPayments serves the admin JSON API (MountAdminAPI); nil: only
	// the token check and 404s.
	AdminPayments AdminPayments
	// MemoryLimit is the memory the process must stay under, in bytes (a
	// container's limit, or GOMEMLIMIT), from which the budget of request
	// bodies in flight is derived when server.max_body_bytes_in_flight
	// is unset (bodyBudgetLimit); 0: none known, no budget.
	MemoryLimit int64
}

// Server holds the HTTP surfaces.
type Server struct {
	cfg *config.Config
	up  Upstream
	log *slog.Logger
	reg *prometheus.Registry
	// scrapes serves /metrics on every listener that mounts it: one, so
	// that their requests share gathers.
	scrapes *scrapeGate
	// adminRefusals paces the lines of refused admin tokens (AdminAuth).
	adminRefusals logging.Paced
	// stateWarnings paces the lines of turns served without payment
	// state (loadState).
	stateWarnings logging.Paced
	store         Pinger
	notify        http.Handler
	// redact masks the known secrets in upstream text before it reaches a
	// client (redacted).
	redact  *logging.Redactor
	clients []clientEntry
	// actorRedact masks the config's secrets, as the log does (from 4
	// bytes, logging.NewRedactor), in an operator's name and reason, which
	// the audit chain keeps for good (adminActor).
	actorRedact *logging.Redactor
	// forward holds the compiled clients[].forward of the clients that set
	// it, by the pointer authenticate returns; a client absent here may
	// call every forwarded path (SPEC 2.2).
	forward  map[*config.Client]forwardRules
	modelsJS []byte
	modelJS  map[string][]byte // GET /v1/models/{id}, by public name
	metrics  *metrics
	// ruledOutSaid holds the client and cause pairs (client name, NUL,
	// toolsRuledOut's words) whose turns without the payment tools were
	// logged: once each, as the accounting's warnings are.
	ruledOutSaid sync.Map
	// noUserSaid holds, per client (*config.Client), which causes of a
	// chat request naming no end user were logged (sayNoUser).
	noUserSaid sync.Map

	ledger     *accounting.Ledger
	tools      PaymentTools
	state      StateStore
	localState bool // state is store.Local: read without a deadline
	reconciler Reconciler
	userPay    UserPayments
	adminPay   AdminPayments
	// providerValues are X-Paygate-Provider's values, one per configured
	// provider, built once.
	providerValues map[string][]string
	toolDefs       []byte   // the payment tool definitions, rendered once
	toolNames      []string // their names, for the clash check
	// clientTools are the definitions of clients limited by allowed_skus
	// or given pay_methods of their own, rendered once each: such a bot's
	// model sees only the SKUs it may sell and the methods it may use, and
	// no other client's catalogue reaches its prompts.
	clientTools map[string][]byte
	// dropFields are the providers' drop_fields, each once: a request that
	// repeats one is refused, as it repeats a member paygate rewrites.
	dropFields []string
	draining   atomic.Bool // Drain was called: /readyz answers 503
	// privacy is forward_user as it applies now: swapped once, by
	// SetHashKey, when the hash key arrives after New.
	privacy atomic.Pointer[userPrivacy]
	// wantHashKey is Options.WantHashKey (storeAnswered).
	wantHashKey func()
	// unkept are the payment exchanges the store failed to take, held
	// here for a follow-up that reaches this replica all the same.
	unkept unkeptExchanges
	// bodies bounds the request bodies held at once (readBody).
	bodies bodyBudget
}

type clientEntry struct {
	digest [32]byte
	cfg    *config.Client
	// previous counts the requests this entry authenticates when its
	// digest is the client's previous_key's (nil for its key): how the
	// operator sees when no bot sends the outgoing key any more.
	previous   prometheus.Counter
	isPrevious bool
}

// New builds a Server.
func New(o Options) (*Server, error) {
	reg := o.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	s := &Server{
		cfg:           o.Config,
		up:            o.Upstream,
		log:           o.Logger,
		reg:           reg,
		scrapes:       newScrapeGate(reg),
		adminRefusals: logging.Paced{Every: adminRefusalLogEvery},
		stateWarnings: logging.Paced{Every: stateWarningEvery},
		store:         o.Store,
		notify:        o.Notify,
		// The config's secrets, and the user hash key when the store made
		// it; only those long enough to be secrets
		// (logging.ClientMinSecret).
		redact:     logging.NewRedactorMin(append(o.Config.Secrets(), string(o.HashKey)), logging.ClientMinSecret),
		tools:      o.Tools,
		ledger:     o.Ledger,
		state:      o.State,
		reconciler: o.Reconciler,
		userPay:    o.UserPayments,
		adminPay:   o.AdminPayments,
		dropFields: dropFields(o.Config),
		// X-Paygate-Provider's values (setPaygateHeaders).
		providerValues: providerValues(o.Config),
		// The same secrets, every one the log masks (adminActor).
		actorRedact: logging.NewRedactor(append(o.Config.Secrets(), string(o.HashKey))),
	}
	s.bodies.limit = bodyBudgetLimit(o.Config.Server, o.MemoryLimit)
	s.privacy.Store(newUserPrivacy(o.Config.Privacy.ForwardUser, o.HashKey))
	s.wantHashKey = o.WantHashKey
	if l, ok := o.State.(store.Local); ok {
		s.localState = l.Local()
	}
	if o.Tools != nil {
		s.toolNames, s.toolDefs, s.clientTools = paymentTools(o.Config)
	}
	for i := range o.Config.Clients {
		c := &o.Config.Clients[i]
		s.clients = append(s.clients, clientEntry{digest: sha256.Sum256([]byte(c.Key)), cfg: c})
		if c.PreviousKey != "" {
			// A rotation's outgoing key (README, Changing the config: clients[].key)
			// acts as the client until a restart without it.
			s.clients = append(s.clients, clientEntry{digest: sha256.Sum256([]byte(c.PreviousKey)), cfg: c, isPrevious: true})
		}
		if c.Forward == nil {
			continue
		}
		fr, err := compileForward(c.Forward, "clients["+strconv.Itoa(i)+"].forward")
		if err != nil {
			return nil, fmt.Errorf("client %q: %w", c.Name, err)
		}
		if s.forward == nil {
			s.forward = map[*config.Client]forwardRules{}
		}
		s.forward[c] = fr
	}
	now := time.Now()
	s.modelsJS = modelList(o.Upstream.Models(), now)
	s.modelJS = make(map[string][]byte)
	for _, n := range o.Upstream.Models() {
		s.modelJS[n] = modelObject(nil, n, now)
	}
	var err error
	if s.metrics, err = newMetrics(reg); err != nil {
		return nil, err
	}
	for i := range s.clients {
		if e := &s.clients[i]; e.isPrevious {
			e.previous = s.metrics.previousKey.WithLabelValues(e.cfg.Name)
		}
	}
	if s.store != nil {
		if err := reg.Register(newStoreStatus(s.store)); err != nil {
			return nil, fmt.Errorf("registering the store status metric: %w", err)
		}
	}
	return s, nil
}

// Handler is the main listener's handler: the client API, the notify route
// (unless it has a listener of its own) and the operator endpoints.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	chat := s.route("chat", s.authed(s.handleChat))
	mux.Handle(chatPattern, chat)
	mux.Handle("GET /v1/models", s.route("models", s.authed(s.handleModels)))
	mux.Handle("GET /v1/models/{id...}", s.route("models", s.authed(s.handleModel)))
	// The models are the config's: nothing changes them through the client
	// API. Forwarded, a DELETE /v1/models/{id} deleted a fine-tuned model
	// of the operator's provider account for any bot's key.
	mux.Handle("/v1/models", s.route("models", s.authed(s.modelsReadOnly)))
	mux.Handle("/v1/models/", s.route("models", s.authed(s.modelsReadOnly)))
	mux.Handle("/v1/", s.route("passthrough", s.authed(s.handlePassthrough)))
	s.mountUserAPI(mux)
	s.operatorRoutes(mux)
	if s.notify != nil && s.cfg.Server.NotifyListen == "" {
		// Served directly: no middleware touches the notify body or headers.
		// Every method reaches it (notifyRoute).
		mux.Handle(notifyRoute, s.notify)
	}
	// Anything else is outside the API. A bot whose base URL lacks /v1
	// lands here, so it gets an error its SDK can read, saying so, rather
	// than ServeMux's plain-text 404 or 405.
	mux.Handle("/", s.route("unknown", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &apiError{Status: http.StatusNotFound, Type: "invalid_request_error", Code: "unknown_url",
			Message: "paygate: unknown endpoint " + r.Method + " " + r.URL.Path +
				"; the OpenAI API is served under /v1 (an SDK's base URL ends in /v1)"})
	}))
	return &chatFirst{mux: mux, chat: chat}
}

// chatPattern is the chat route's ServeMux pattern.
const chatPattern = "POST /v1/chat/completions"

// chatFirst serves the chat route without asking the mux, and everything
// else through it. ServeMux cleans the path, strips the host's port,
// unescapes each segment and walks its tree on every request, about 2,400
// instructions, to find the route nearly every request takes; a plain POST
// to the exact path is that route whatever else is registered (no pattern
// names a host, and none is more specific than a method and an exact
// path). TestChatFirstIsTheMuxChoice holds the two to the same choice.
type chatFirst struct {
	mux  *http.ServeMux
	chat http.Handler
}

func (c *chatFirst) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if isChatRoute(r) {
		r.Pattern = chatPattern // as the mux sets it
		c.chat.ServeHTTP(w, r)
		return
	}
	c.mux.ServeHTTP(w, r)
}

// isChatRoute is whether r is a plain POST to the chat path: the path as
// written, nothing escaped in it.
func isChatRoute(r *http.Request) bool {
	return r.Method == http.MethodPost && r.URL.Path == "/v1/chat/completions" && r.URL.RawPath == ""
}

// NotifyHandler serves only the notify route, for server.notify_listen.
func (s *Server) NotifyHandler() http.Handler {
	mux := http.NewServeMux()
	if s.notify != nil {
		mux.Handle(notifyRoute, s.notify)
	}
	return mux
}

// notifyRoute is the notify route's pattern, for every method: the notify
// handler answers one that is not POST itself (405 in WeChat's FAIL shape,
// its metric and a log line). A pattern naming POST left another method
// (an operator checking that the notify_url reaches paygate) to the main
// listener's catch-all, a 404 "unknown endpoint" that said the route was
// not there, or to ServeMux's plain-text 405 on the notify listener.
const notifyRoute = "/wechatpay/notify" // payments.NotifyPath

func (s *Server) operatorRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", s.handleReady)
	mux.Handle("GET /metrics", s.scrapes)
	// Another method on these paths is a 405 naming the ones served: the
	// catch-all's 404 "unknown endpoint … served under /v1" told an
	// operator whose probe sent a POST that the health route did not exist.
	notServed := s.route("operator", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, &apiError{Status: http.StatusMethodNotAllowed, Type: "invalid_request_error", Code: "method_not_allowed",
			Message: "paygate: " + r.Method + " " + r.URL.Path + " is not served; use GET"})
	})
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		mux.Handle(p, notServed)
	}
}

// Drain marks the server as shutting down: /readyz answers 503 from now on,
// so a load balancer or Kubernetes stops sending it traffic while in-flight
// requests finish.
func (s *Server) Drain() { s.draining.Store(true) }

func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	if s.draining.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("draining\n"))
		return
	}
	if s.store != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := s.store.Ping(ctx); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			if errors.Is(err, store.ErrDataLost) {
				_, _ = w.Write([]byte(store.DataLostAdvice + "\n"))
				return
			}
			if errors.Is(err, store.ErrOtherDeployment) {
				_, _ = w.Write([]byte("the store holds another paygate deployment's keys under this one's store.redis.key_prefix: give it one of its own; the log names both\n"))
				return
			}
			if errors.Is(err, store.ErrWritesFail) {
				// It answers reads: not the network. The embedded
				// file's disk (full, read-only); Redis's own refusal,
				// which no disk of this host causes.
				if l, ok := s.store.(store.Local); ok && l.Local() {
					_, _ = w.Write([]byte("store writes fail: check its disk (full, read-only?)\n"))
				} else {
					_, _ = w.Write([]byte("store writes fail: Redis refuses writes (maxmemory, MISCONF, too few replicas, a replica?); the log names its answer\n"))
				}
				return
			}
			if l, ok := s.store.(store.Local); !(ok && l.Local()) && !errors.Is(err, store.ErrUnavailable) && r.Context().Err() == nil {
				// Redis answered, with an error of its own that is no
				// "not now" (WRONGPASS, NOAUTH: store.redis.username and
				// password; NOPERM: its ACL; a syntax error: a Redis older
				// than paygate's commands): "unreachable" sent the
				// operator to the network.
				_, _ = w.Write([]byte("store refuses: Redis refuses paygate's commands (store.redis.username and password, its ACL, its version?); the log names its answer\n"))
				return
			}
			_, _ = w.Write([]byte("store unreachable\n"))
			return
		}
	}
	if s.storeAnswered() {
		// Traffic sent here now would reach providers without the end
		// user's identifiers: not ready until the key is loaded.
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(hashKeyNotLoaded + "\n"))
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}

// requestCtx is what the middleware learned about a request.
type requestCtx struct {
	id     string
	client *config.Client
	// fallbackID is fallbackIDPrefix and id, sharing id's memory (routed);
	// "" where the request did not come through route.
	fallbackID string
}

// fallbackIDPrefix begins a turn's id that no provider named (turn.fallbackID).
const fallbackIDPrefix = "chatcmpl-paygate-"

type ctxKey struct{}

func reqInfo(r *http.Request) *requestCtx {
	rc, _ := r.Context().Value(ctxKey{}).(*requestCtx)
	return rc
}

// fallback is the id of a turn whose provider named none:
// fallbackIDPrefix and the request's id.
func (rc *requestCtx) fallback() string {
	if rc.fallbackID != "" {
		return rc.fallbackID
	}
	return fallbackIDPrefix + rc.id
}

// route wraps a handler with the request id and metrics. It recovers
// nothing: a panic is the server's (proxy/h1, like net/http, logs it and
// closes the connection without an answer), and is counted as a 500 when
// it came before the head.
func (s *Server) route(name string, h http.HandlerFunc) http.Handler {
	m := s.metrics.forRoute(name)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rt := new(routed)
		rc, sw := &rt.rc, &rt.sw
		rc.id = rt.newID()
		sw.ResponseWriter = w
		rt.idHeader[0] = rc.id
		sw.Header()["X-Request-Id"] = rt.idHeader[:1:1]
		returned := false
		defer func() {
			code := sw.code
			if !returned && code == 0 {
				// A panic before the head (a bug: the server closes
				// the connection without an answer) is no 200, which
				// an unset status otherwise means.
				code = http.StatusInternalServerError
			}
			m.observe(code, time.Since(start))
			if r.Context().Err() != nil && context.Cause(r.Context()) == h1.ErrWriteStalled {
				s.logWriteStalled(name, rc)
			}
		}()
		rt.Context = r.Context()
		rt.req = *r.WithContext(rt) // the copy, inlined, stays on the stack
		h(sw, &rt.req)
		returned = true
	})
}

// logWriteStalled says that a request's bot stopped reading its answer and
// was cut by the server's write stall bound (proxy/h1): its request was
// cancelled as when a bot leaves (the provider's exchange closed, no
// further payment call started), which nothing else tells from a bot that
// left. A bot that does this (an event loop blocked, an SDK that stopped
// consuming a stream, a proxy in front that buffers without end) gets no
// whole answer, so it is a WARN.
func (s *Server) logWriteStalled(route string, rc *requestCtx) {
	client := ""
	if rc.client != nil {
		client = rc.client.Name
	}
	s.log.Warn("the bot stopped reading its answer: cut by the write stall bound, its request cancelled",
		"request_id", rc.id, "route", route, "client", client)
}

// noClientKey is the 401's message for a request whose Authorization
// named no client: the generic one, but for a request that sent none,
// where it says where the key goes (Azure's SDKs send theirs in api-key
// alone, and a bot's first integration got "Incorrect API key provided"
// for a key that was right).
func noClientKey(auth string, h http.Header) string {
	const use = "Use a paygate client key (clients[].key) as the Bearer token: Authorization: Bearer <key>."
	switch {
	case auth != "":
		return "Incorrect API key provided. " + use
	case h.Get("Api-Key") != "":
		return "paygate reads the client key from the Authorization header, not in api-key (Azure OpenAI's). " + use
	}
	return "You didn't provide an API key (no Authorization header). " + use
}

// authed checks the client key before h runs.
func (s *Server) authed(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		auth := httpwire.Field(r.Header, "Authorization")
		c := s.authenticate(auth)
		if c == nil {
			writeError(w, &apiError{Status: http.StatusUnauthorized, Type: "invalid_request_error", Code: "invalid_api_key",
				Message: noClientKey(auth, r.Header)})
			return
		}
		reqInfo(r).client = c
		if aerr := twoUsers(r.Header); aerr != nil {
			writeError(w, aerr)
			return
		}
		if aerr := twoSessions(r.Header); aerr != nil {
			writeError(w, aerr)
			return
		}
		h(w, r)
	}
}

// twoUsers is the 400 of a request whose X-WeChat-OpenID header is given
// more than once with different values, else nil: it names no one end
// user, and every path takes the first. A bot that forwards its client's
// headers and adds its own (Header.Add, fetch's append) sends the
// client's first, so the end user chose whom paygate acted for: another
// user's orders, payment state and refund confirmation. Which the bot
// meant is not paygate's to guess where money is concerned, as with a
// body's "user" given twice. The same value repeated names one user.
func twoUsers(h http.Header) *apiError {
	v := h[openIDKey]
	for _, u := range v[min(1, len(v)):] {
		if u != v[0] {
			return &apiError{Status: http.StatusBadRequest, Type: "invalid_request_error", Code: "user_ambiguous",
				Message: "paygate: the " + headerOpenID + " header is given more than once with different values; send it once, naming the end user"}
		}
	}
	return nil
}

// sessionHeaderKey is the X-Paygate-Session header's canonical name.
var sessionHeaderKey = http.CanonicalHeaderKey("X-Paygate-Session")

// twoSessions is the 400 of a request whose X-Paygate-Session header is
// given more than once with different values, else nil, as twoUsers is of
// the OpenID: it names no one conversation, and every path took the first.
// A bot that forwards its client's headers and adds its own sent the
// client's first, so the end user chose the conversation of the user's
// that the turn was kept in, and two conversations the bot kept apart were
// one: the payment exchanges kept for the bot's next request, restored by
// the bot's call ids (which a provider may number alike in every
// conversation), and the LLM cost a paid order takes over. The same value
// repeated names one conversation.
func twoSessions(h http.Header) *apiError {
	v := h[sessionHeaderKey]
	for _, s := range v[min(1, len(v)):] {
		if s != v[0] {
			return &apiError{Status: http.StatusBadRequest, Type: "invalid_request_error", Code: "session_ambiguous",
				Message: "paygate: the X-Paygate-Session header is given more than once with different values; send it once, naming the conversation"}
		}
	}
	return nil
}

// authenticate compares the bearer token (bearerToken) with every client
// key in constant time, so response timing reveals nothing about the keys.
// Its SHA-256 (about 2,600 instructions a request) is not cached by token:
// a map keyed by the secret compares it in variable time.
func (s *Server) authenticate(header string) *config.Client {
	tok, ok := bearerToken(header)
	if !ok {
		return nil
	}
	d := sha256.Sum256([]byte(tok))
	var found *clientEntry
	for i := range s.clients {
		if subtle.ConstantTimeCompare(d[:], s.clients[i].digest[:]) == 1 {
			found = &s.clients[i]
		}
	}
	if found == nil {
		return nil
	}
	if found.previous != nil {
		found.previous.Inc()
	}
	return found.cfg
}

// bearerToken returns the token of an "Authorization: Bearer <token>"
// header: the scheme matched without regard to case (RFC 9110 11.1;
// hand-written backends send "bearer"), spaces around the token ignored;
// false when the header holds no bearer token.
func bearerToken(header string) (string, bool) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.Trim(tok, " \t")
	return tok, tok != ""
}

// routed is what route keeps for one request, in one allocation where it
// was six: the request's id and context value, the status recorder, the
// X-Request-Id header's value, the context that carries the value and the
// handler's request with that context.
type routed struct {
	context.Context // the server's request context
	req             http.Request
	rc              requestCtx
	sw              statusWriter
	id              [len(fallbackIDPrefix) + logging.RequestIDLen]byte // the fallback id, the request's its tail
	idHeader        [1]string
}

// Value carries the request's requestCtx under ctxKey and its id under
// logging.RequestIDKey, as context.WithValue would; every other key is the
// server context's, so context's own lookups (its cancelCtx, for AfterFunc
// and WithCancel on top of this one) find what they would without it.
func (m *routed) Value(key any) any {
	switch key.(type) {
	case ctxKey:
		return &m.rc
	case logging.RequestIDKey:
		// The id for the log lines of code that knows no request
		// (failover, the payment tools), as logging.WithRequestID would
		// carry it without a context of its own.
		return m.rc.id
	}
	return m.Context.Value(key)
}

// newID fills m's id and returns it as a string that shares m's memory; it
// is never written again. The turn's fallback id is made with it, in the
// same memory (rc.fallbackID): a streaming turn hands it to its first
// round whether a chunk needs it or not, and built there it cost every
// such turn an allocation.
func (m *routed) newID() string {
	n := copy(m.id[:], fallbackIDPrefix)
	logging.FillRequestID((*[logging.RequestIDLen]byte)(m.id[n:]))
	m.rc.fallbackID = unsafe.String(&m.id[0], len(m.id))
	return m.rc.fallbackID[n:]
}

// statusWriter records the status for metrics. It implements Unwrap so
// http.ResponseController still reaches the real writer's Flush.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (s *Server) handleModels(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(s.modelsJS)
}

// handleModel answers GET /v1/models/{id} (an SDK's models.retrieve) from
// the config, as the list: forwarded, the public name would reach a
// provider that knows only its own names.
func (s *Server) handleModel(w http.ResponseWriter, r *http.Request) {
	b, ok := s.modelJS[r.PathValue("id")]
	if !ok {
		writeError(w, modelNotFound(r.PathValue("id")))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

// modelsReadOnly answers any method but GET and HEAD on the models
// routes: 405 in OpenAI's error shape, its Allow naming both, as the
// operator routes' does: the GET routes serve HEAD too (RFC 9110 10.2.1:
// Allow lists the methods the resource supports).
func (s *Server) modelsReadOnly(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Allow", "GET, HEAD")
	writeError(w, &apiError{Status: http.StatusMethodNotAllowed, Type: "invalid_request_error", Code: "method_not_allowed",
		Message: "paygate: " + r.Method + " " + r.URL.Path + " is not served: the models are paygate's config, read with GET"})
}

// modelList renders GET /v1/models: the public names of the config, in
// OpenAI's list shape.
func modelList(names []string, now time.Time) []byte {
	b := []byte(`{"object":"list","data":[`)
	for i, n := range names {
		if i > 0 {
			b = append(b, ',')
		}
		b = modelObject(b, n, now)
	}
	return append(b, "]}"...)
}

// modelObject appends one model object of the list to b.
func modelObject(b []byte, name string, now time.Time) []byte {
	b = append(b, `{"id":`...)
	b = jsonstr.Append(b, name)
	b = append(b, `,"object":"model","created":`...)
	b = strconv.AppendInt(b, now.Unix(), 10)
	return append(b, `,"owned_by":"paygate"}`...)
}

// toolDefsFor returns the payment tool definitions client's model is offered.
func (s *Server) toolDefsFor(client string) []byte {
	if defs, ok := s.clientTools[client]; ok {
		return defs
	}
	return s.toolDefs
}

// PaymentToolDefs renders the payment tool definitions a server offers
// under cfg (payments enabled): defs, those of every client without its
// own, and byClient, by client name, those of each client whose
// allowed_skus or pay_methods give it its own. check-config measures the
// catalog's size (prompt tokens every signed-in turn) on them, so that
// what it warns of is what is sent.
func PaymentToolDefs(cfg *config.Config) (defs []byte, byClient map[string][]byte) {
	_, defs, byClient = paymentTools(cfg)
	return defs, byClient
}

// paymentTools names every payment tool of cfg and renders the
// definitions PaymentToolDefs returns.
func paymentTools(cfg *config.Config) (names []string, defs []byte, byClient map[string][]byte) {
	spec := toolSpec(cfg)
	// Every name stays paygate's (a bot tool of that name clashes, a call
	// is refused), but with max_payment_calls 0 the money-moving tools
	// are not offered: each call of them could only be refused, and the
	// model, offered them, kept trying and asking the user.
	names = spec.Names()
	if cfg.Payments.Budget.MaxPaymentCalls == 0 {
		spec.CreateOrder, spec.RequestRefund = "", ""
	}
	defs = interceptors.PaymentTools(spec)
	for _, c := range cfg.Clients {
		if len(c.AllowedSKUs) == 0 && len(c.PayMethods) == 0 {
			continue
		}
		// Rendered once per such client: tools are added to every
		// request, and rendering them there cost allocations on every
		// turn.
		own := spec
		if len(c.PayMethods) > 0 {
			own.PayMethods = c.PayMethods
		}
		if len(c.AllowedSKUs) > 0 {
			// The allow-list as a set: compared pair by pair, 5,000 SKUs
			// and an allow-list of as many took 35 ms per such client at
			// start, and the square of that as both grow.
			only := make(map[string]struct{}, len(c.AllowedSKUs))
			for _, id := range c.AllowedSKUs {
				only[id] = struct{}{}
			}
			own.SKUs = nil
			for _, sku := range spec.SKUs {
				if _, ok := only[sku.ID]; ok {
					own.SKUs = append(own.SKUs, sku)
				}
			}
		}
		if byClient == nil {
			byClient = map[string][]byte{}
		}
		byClient[c.Name] = interceptors.PaymentTools(own)
	}
	return names, defs, byClient
}

// toolSpec describes the payment tools from the config's names and catalog.
func toolSpec(cfg *config.Config) interceptors.ToolSpec {
	p := cfg.Payments
	spec := interceptors.ToolSpec{CreateOrder: p.Tools.CreateOrder, QueryOrder: p.Tools.QueryOrder, RequestRefund: p.Tools.RequestRefund,
		PayMethods: p.PayMethods}
	for _, it := range p.Catalog {
		fen, _ := it.Price.Fen()
		spec.SKUs = append(spec.SKUs, interceptors.SKU{ID: it.SKU, Name: it.Name, PriceFen: fen, MaxQuantity: it.MaxQuantity})
	}
	return spec
}

// providerValues are the X-Paygate-Provider values of the configured
// providers, built once (shared as attemptValues are).
func providerValues(cfg *config.Config) map[string][]string {
	m := make(map[string][]string, len(cfg.Providers))
	for _, p := range cfg.Providers {
		m[p.Name] = []string{p.Name}
	}
	return m
}
