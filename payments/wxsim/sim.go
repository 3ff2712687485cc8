package wxsim

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/paygate/paygate/payments/wechatpay"
)

// SigningMode selects the key the simulator signs responses and
// notifications with.
type SigningMode int

// Signing modes. A request whose Wechatpay-Serial header names the other key is
// answered with that key, as WeChat Pay does during a migration.
const (
	SignPublicKey SigningMode = iota
	SignCertificate
)

// Options configures a Server. Zero values are usable.
type Options struct {
	MchID string // default "1900000001"
	AppID string // default "wxd930ea5d5a258f4f"; used by ClientConfig
	// AppIDs, when set, are the appids bound to the merchant; a prepay for
	// another appid is refused with APPID_MCHID_NOT_MATCH. Empty: any appid.
	AppIDs []string
	// OpenIDs, when set, name the appid that issued each openid; a JSAPI
	// prepay for a listed openid under another appid is refused as WeChat
	// Pay refuses it: HTTP 500 OPENID_MISMATCH, which is final despite the
	// status. Unlisted openids pass.
	OpenIDs map[string]string
	// NoAuth are the pay methods ("jsapi", "native") the merchant has not
	// activated: a prepay in one is refused 403 NO_AUTH, nothing opened.
	NoAuth   []string
	APIv3Key string // exactly 32 bytes; empty: generated
	Keys     *Keys  // nil: generated
	SignWith SigningMode

	// AutoPayAfter > 0 pays every new order after that delay and delivers the
	// notification; 0 leaves payment to Pay. AutoRefundAfter does the same for
	// refunds (0: CompleteRefund).
	AutoPayAfter    time.Duration
	AutoRefundAfter time.Duration

	// RefundInterval > 0 enforces WeChat Pay's rule that the refund
	// requests of one order be that far apart (a minute, at WeChat Pay): a
	// new refund of an order within RefundInterval of its last one
	// accepted is answered 429 FREQUENCY_LIMITED, nothing made (a refund
	// sent again under its own out_refund_no is answered as before). 0:
	// not enforced.
	RefundInterval time.Duration

	// Notification delivery: attempts per notification (default 5) and the
	// pause between them (default 1s), through HTTPClient (default: 5s timeout).
	NotifyAttempts int
	NotifyRetry    time.Duration
	HTTPClient     *http.Client

	// Delivered, when set, is called after each notification's delivery ends
	// (acknowledged or out of attempts). It must not block.
	Delivered func(Delivery)

	Logger *slog.Logger
	Now    func() time.Time
}

// Errors of the explicit operations.
var (
	ErrUnknownOrder  = errors.New("wxsim: unknown order")
	ErrUnknownRefund = errors.New("wxsim: unknown refund")
	ErrNotPayable    = errors.New("wxsim: order is not awaiting payment")
	ErrNotProcessing = errors.New("wxsim: refund is not processing")
	ErrClosed        = errors.New("wxsim: server closed")
)

// Server is the simulated WeChat Pay. It is an http.Handler; Start serves it
// on a loopback listener of its own.
type Server struct {
	opts     Options
	keys     *Keys
	apiv3Key string
	log      *slog.Logger
	now      func() time.Time
	client   *http.Client

	mu         sync.Mutex
	orders     map[string]*order // by out_trade_no
	byTxID     map[string]*order
	refunds    map[string]*refund // by out_refund_no
	prepays    map[string]int     // accepted prepay requests per out_trade_no
	requests   []RequestLog
	deliveries []Delivery
	faults     []Fault
	signWith   SigningMode
	timers     map[*time.Timer]struct{}
	// merchantCerts are the merchant API certificates requests may be
	// signed under besides Keys.MerchantSerial's (a rotation's new one),
	// by serial; revoked names the serials refused, the first one's too.
	merchantCerts map[string]*rsa.PublicKey
	revoked       map[string]bool
	// newPlatform, once set (RotatePlatformCertificate), is the platform
	// certificate the simulator signs with in place of Keys.PlatformCert.
	newPlatform *platformCert

	closed    chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
	srv       *http.Server
}

// New builds a Server, generating whatever key material Options lacks.
func New(opts Options) (*Server, error) {
	if opts.MchID == "" {
		opts.MchID = "1900000001"
	}
	if opts.AppID == "" {
		opts.AppID = "wxd930ea5d5a258f4f"
	}
	if opts.APIv3Key == "" {
		opts.APIv3Key = randomHex(16)
	}
	if len(opts.APIv3Key) != 32 {
		return nil, fmt.Errorf("wxsim: apiv3 key must be exactly 32 bytes, got %d", len(opts.APIv3Key))
	}
	if opts.Keys == nil {
		k, err := GenerateKeys()
		if err != nil {
			return nil, fmt.Errorf("wxsim: %w", err)
		}
		opts.Keys = k
	}
	if opts.NotifyAttempts <= 0 {
		opts.NotifyAttempts = 5
	}
	if opts.NotifyRetry <= 0 {
		opts.NotifyRetry = time.Second
	}
	s := &Server{
		opts: opts, keys: opts.Keys, apiv3Key: opts.APIv3Key,
		log: opts.Logger, now: opts.Now, client: opts.HTTPClient,
		orders: map[string]*order{}, byTxID: map[string]*order{}, refunds: map[string]*refund{},
		prepays: map[string]int{}, signWith: opts.SignWith, timers: map[*time.Timer]struct{}{},
		closed: make(chan struct{}),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.client == nil {
		s.client = &http.Client{Timeout: 5 * time.Second}
	}
	return s, nil
}

// MchID is the simulated merchant number.
func (s *Server) MchID() string { return s.opts.MchID }

// AppID is the default appid.
func (s *Server) AppID() string { return s.opts.AppID }

// APIv3Key is the merchant's APIv3 key (a secret: never log it).
func (s *Server) APIv3Key() string { return s.apiv3Key }

// Keys is the simulator's key material.
func (s *Server) Keys() *Keys { return s.keys }

// AddMerchantCertificate makes serial, with public key pub, one more of the
// merchant's valid API certificates: as WeChat Pay does, a request signed
// under any valid certificate, named by its serial, is taken.
func (s *Server) AddMerchantCertificate(serial string, pub *rsa.PublicKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.merchantCerts == nil {
		s.merchantCerts = map[string]*rsa.PublicKey{}
	}
	s.merchantCerts[serial] = pub
}

// RevokeMerchantCertificate refuses requests signed under serial from now
// on, as a certificate revoked on the merchant platform is.
func (s *Server) RevokeMerchantCertificate(serial string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.revoked == nil {
		s.revoked = map[string]bool{}
	}
	s.revoked[serial] = true
}

// platformCert is a platform certificate's key and serial.
type platformCert struct {
	key    *rsa.PrivateKey
	serial string
}

// RotatePlatformCertificate makes key, with its certificate cert, the
// platform certificate WeChat Pay signs with from now on, as it does once
// the old one has expired (it puts the new one in Wechatpay-Serial): every
// answer and notification that would have been signed with Keys'
// platform certificate, the one a request asks for by its serial
// included, is signed with the new one. The WeChat Pay public key
// (PublicKeyID) is unchanged.
func (s *Server) RotatePlatformCertificate(key *rsa.PrivateKey, cert *x509.Certificate) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.newPlatform = &platformCert{key: key, serial: fmt.Sprintf("%X", cert.SerialNumber.Bytes())}
}

// merchantKey is the public key of the valid merchant certificate serial.
func (s *Server) merchantKey(serial string) (*rsa.PublicKey, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.revoked[serial] {
		return nil, false
	}
	if serial == s.keys.MerchantSerial {
		return &s.keys.MerchantKey.PublicKey, true
	}
	pub, ok := s.merchantCerts[serial]
	return pub, ok
}

// SetSigningMode switches the key used for responses and notifications, as
// WeChat Pay does during a migration.
func (s *Server) SetSigningMode(m SigningMode) {
	s.mu.Lock()
	s.signWith = m
	s.mu.Unlock()
}

// ClientConfig is a wechatpay.Config that drives this simulator at apiBase
// (as returned by Start, or an httptest server's URL) and receives its
// notifications at notifyURL. Verification covers the public key and the
// platform certificate (both configured at once, as during WeChat Pay's key
// migration), so whatever SetSigningMode says, a response or notification
// verifies: with the certificate left out, every notification signed with it
// was refused as an unknown serial.
func (s *Server) ClientConfig(apiBase, notifyURL string) wechatpay.Config {
	return wechatpay.Config{
		APIBase:       apiBase,
		MchID:         s.opts.MchID,
		AppID:         s.opts.AppID,
		MchCertSerial: s.keys.MerchantSerial,
		MchPrivateKey: s.keys.MerchantKey,
		APIv3Key:      s.apiv3Key,
		PublicKeyID:   s.keys.PublicKeyID,
		PublicKey:     &s.keys.PayKey.PublicKey,
		PlatformCerts: []*x509.Certificate{s.keys.PlatformCert},
		NotifyURL:     notifyURL,
	}
}

// Start serves the simulator on addr (e.g. "127.0.0.1:0") until Close and
// returns its base URL.
func (s *Server) Start(addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("wxsim: listen: %w", err)
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second}
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("wxsim: serve", "err", err)
		}
	}()
	return "http://" + ln.Addr().String(), nil
}

// Close stops timers, pending deliveries and the listener (if started), and
// waits for them.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		close(s.closed)
		s.mu.Lock()
		for t := range s.timers {
			if t.Stop() {
				s.wg.Done() // it will never run
			}
			delete(s.timers, t)
		}
		srv := s.srv
		s.mu.Unlock()
		if srv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_ = srv.Shutdown(ctx)
			cancel()
			_ = srv.Close()
		}
	})
	s.wg.Wait()
	return nil
}

// after runs fn after d unless the server closes first.
func (s *Server) after(d time.Duration, fn func(ctx context.Context)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.closed:
		return
	default:
	}
	s.wg.Add(1)
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		defer s.wg.Done()
		s.mu.Lock()
		delete(s.timers, t)
		s.mu.Unlock()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			select {
			case <-s.closed:
				cancel()
			case <-ctx.Done():
			}
		}()
		fn(ctx)
	})
	s.timers[t] = struct{}{}
}

// signer returns the key, serial for a response, honouring the serial the
// client asked for.
func (s *Server) signer(asked string) (*rsa.PrivateKey, string) {
	s.mu.Lock()
	mode, rotated := s.signWith, s.newPlatform
	s.mu.Unlock()
	platform := func() (*rsa.PrivateKey, string) {
		if rotated != nil {
			return rotated.key, rotated.serial
		}
		return s.keys.PlatformKey, s.keys.PlatformSerial
	}
	switch {
	case asked == s.keys.PublicKeyID:
		return s.keys.PayKey, s.keys.PublicKeyID
	case asked == s.keys.PlatformSerial || rotated != nil && asked == rotated.serial:
		return platform()
	}
	if mode == SignCertificate {
		return platform()
	}
	return s.keys.PayKey, s.keys.PublicKeyID
}

// Sign returns the Wechatpay-* headers of body signed at ts with the key named
// by serial (the public key, Keys' platform certificate or the one
// RotatePlatformCertificate set; any other serial is still signed with the
// public key, for tests of unknown serials).
func (s *Server) Sign(body []byte, ts time.Time, serial string) http.Header {
	key := s.keys.PayKey
	s.mu.Lock()
	rotated := s.newPlatform
	s.mu.Unlock()
	switch {
	case serial == s.keys.PlatformSerial:
		key = s.keys.PlatformKey
	case rotated != nil && serial == rotated.serial:
		key = rotated.key
	}
	return signWith(key, serial, body, ts)
}

func signWith(key *rsa.PrivateKey, serial string, body []byte, ts time.Time) http.Header {
	nonce := randomHex(16)
	tsText := strconv.FormatInt(ts.Unix(), 10)
	msg := tsText + "\n" + nonce + "\n" + string(body) + "\n"
	h := http.Header{}
	h.Set("Wechatpay-Timestamp", tsText)
	h.Set("Wechatpay-Nonce", nonce)
	h.Set("Wechatpay-Serial", serial)
	h.Set("Wechatpay-Signature", signB64(key, msg))
	h.Set("Wechatpay-Signature-Type", wechatpay.SignatureType)
	return h
}

func signB64(key *rsa.PrivateKey, msg string) string {
	sum := sha256.Sum256([]byte(msg))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		// Only a broken key or entropy source gets here; nothing can sign.
		panic(fmt.Sprintf("wxsim: sign: %v", err))
	}
	return base64.StdEncoding.EncodeToString(sig)
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("wxsim: entropy: %v", err))
	}
	return hex.EncodeToString(b)
}

func randomDigits(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("wxsim: entropy: %v", err))
	}
	for i := range b {
		b[i] = '0' + b[i]%10
	}
	return string(b)
}
