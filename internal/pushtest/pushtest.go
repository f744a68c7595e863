// Package pushtest is a push service for tests: a local HTTPS server that checks each push's
// VAPID Authorization (RFC 8292) and decrypts its aes128gcm body (RFC 8291) with the keys of the
// browser it was sent to, as the browsers' push services do.
package pushtest

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Device is a browser's side of a subscription: the key pair and the authentication secret
// the Push API makes, which the fake push service decrypts pushes with.
type Device struct {
	Name     string
	Endpoint string // the URL the browser gives the server
	priv     *ecdh.PrivateKey
	auth     []byte
}

// P256dh and Auth are the subscription's keys as PushSubscription.toJSON() gives them.
func (d *Device) P256dh() string {
	return base64.RawURLEncoding.EncodeToString(d.priv.PublicKey().Bytes())
}
func (d *Device) Auth() string { return base64.RawURLEncoding.EncodeToString(d.auth) }

// Received is one push the service took.
type Received struct {
	Device  string
	N       int // the device's requests so far, this one included
	Payload map[string]any
	Headers http.Header
	Size    int
	At      time.Time
}

// Reply is what the service answers one request with; Hang makes it wait for the
// request's end instead.
type Reply struct {
	Status int
	Header map[string]string
	Hang   bool
}

// Server is a push service on a local HTTPS server: it checks each request's VAPID
// Authorization (RFC 8292), decrypts its aes128gcm body (RFC 8291) with the device's private
// key, and answers as the test scripts it.
type Server struct {
	t   *testing.T
	srv *httptest.Server

	mu      sync.Mutex
	vapid   string                       // guarded by mu, the public key pushes must be signed with (base64url)
	subject string                       // guarded by mu, the JWT's expected sub
	devices map[string]*Device           // guarded by mu, by path
	counts  map[string]int               // guarded by mu, requests per device
	script  func(d *Device, n int) Reply // guarded by mu

	Got     chan Received // every request that passed the checks, whatever its answer
	Hung    chan string   // the devices of hanging requests, once they are in the handler
	Aborted chan string   // the devices of hanging requests, once their request ended
}

// New starts a push service that answers 201 Created to every valid push until SetScript says
// otherwise; it stops when the test ends. Set the key it checks with SetVAPID.
func New(t *testing.T) *Server {
	f := &Server{
		t:       t,
		devices: map[string]*Device{},
		counts:  map[string]int{},
		script:  func(*Device, int) Reply { return Reply{Status: http.StatusCreated} },
		Got:     make(chan Received, 4096),
		Hung:    make(chan string, 64),
		Aborted: make(chan string, 64),
	}
	f.srv = httptest.NewTLSServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// Host is the server's host:port, for the allowlist.
func (f *Server) Host() string { return strings.TrimPrefix(f.srv.URL, "https://") }

// NewDevice makes a browser subscribed on this push service.
func (f *Server) NewDevice(name string) *Device {
	priv, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		f.t.Fatal(err)
	}
	d := &Device{Name: name, priv: priv, auth: make([]byte, 16)}
	_, _ = rand.Read(d.auth)
	path := "/wpush/v2/" + name
	d.Endpoint = f.srv.URL + path
	f.mu.Lock()
	f.devices[path] = d
	f.mu.Unlock()
	return d
}

// SetScript has the service answer the nth valid push to d with s(d, n).
func (f *Server) SetScript(s func(d *Device, n int) Reply) {
	f.mu.Lock()
	f.script = s
	f.mu.Unlock()
}

func (f *Server) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	d := f.devices[r.URL.Path]
	f.mu.Unlock()
	if d == nil || r.Method != http.MethodPost {
		http.Error(w, "no such subscription", http.StatusNotFound)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 8192))
	if err != nil {
		return
	}
	if err := f.checkVAPID(r.Header.Get("Authorization")); err != nil {
		f.t.Errorf("%s: VAPID: %v", d.Name, err)
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	if ce := r.Header.Get("Content-Encoding"); ce != "aes128gcm" {
		f.t.Errorf("%s: Content-Encoding=%q, want aes128gcm", d.Name, ce)
	}
	plain, err := Decrypt(d, body)
	if err != nil {
		f.t.Errorf("%s: decrypt: %v", d.Name, err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var payload map[string]any
	if err := json.Unmarshal(plain, &payload); err != nil {
		f.t.Errorf("%s: payload %q: %v", d.Name, plain, err)
	}
	f.mu.Lock()
	f.counts[d.Name]++
	n := f.counts[d.Name]
	script := f.script
	f.mu.Unlock()
	f.Got <- Received{Device: d.Name, N: n, Payload: payload, Headers: r.Header.Clone(), Size: len(body), At: time.Now()}
	rep := script(d, n)
	if rep.Hang {
		f.Hung <- d.Name
		<-r.Context().Done()
		f.Aborted <- d.Name
		return
	}
	for k, v := range rep.Header {
		w.Header().Set(k, v)
	}
	w.WriteHeader(rep.Status)
}

// SetVAPID sets the public key (base64url) pushes must be signed with and the contact their
// JWT must name.
func (f *Server) SetVAPID(publicKey, subject string) {
	f.mu.Lock()
	f.vapid, f.subject = publicKey, subject
	f.mu.Unlock()
}

// CertificatePEM is the server's certificate in PEM, for a file of trusted certificates.
func (f *Server) CertificatePEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.srv.Certificate().Raw})
}

// checkVAPID checks an Authorization header of RFC 8292: "vapid t=<JWT>, k=<key>", the key
// the service's, the JWT signed with it (ES256) for this server's origin, expiring within a
// day, naming the expected contact.
func (f *Server) checkVAPID(h string) error {
	f.mu.Lock()
	vapid, subject := f.vapid, f.subject
	f.mu.Unlock()
	rest, ok := strings.CutPrefix(h, "vapid ")
	if !ok {
		return fmt.Errorf("scheme of %q, want vapid", h)
	}
	var token, key string
	for _, part := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			token = v
		case "k":
			key = v
		}
	}
	if key != vapid {
		return fmt.Errorf("k=%q, want the service's key %q", key, vapid)
	}
	raw, err := base64.RawURLEncoding.DecodeString(key)
	if err != nil {
		return fmt.Errorf("k: %v", err)
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), raw)
	if err != nil {
		return fmt.Errorf("k: %v", err)
	}
	claims := jwt.MapClaims{}
	_, err = jwt.ParseWithClaims(token, claims, func(*jwt.Token) (any, error) { return pub, nil },
		jwt.WithValidMethods([]string{"ES256"}), jwt.WithAudience(f.srv.URL), jwt.WithExpirationRequired())
	if err != nil {
		return fmt.Errorf("JWT: %v", err)
	}
	exp, err := claims.GetExpirationTime()
	if err != nil || exp.After(time.Now().Add(24*time.Hour)) {
		return fmt.Errorf("exp %v: want within 24 h", exp)
	}
	if sub, _ := claims.GetSubject(); sub != subject {
		return fmt.Errorf("sub=%q, want %q", sub, subject)
	}
	return nil
}

// Decrypt opens an aes128gcm body (RFC 8188) addressed to d with the keys of RFC 8291.
func Decrypt(d *Device, body []byte) ([]byte, error) {
	if len(body) < 21 {
		return nil, errors.New("shorter than the header")
	}
	salt := body[:16]
	rs := binary.BigEndian.Uint32(body[16:20])
	idlen := int(body[20])
	if idlen != 65 || len(body) < 21+idlen {
		return nil, fmt.Errorf("keyid of %d bytes, want the sender's 65-byte key", idlen)
	}
	if int(rs) < len(body) {
		return nil, fmt.Errorf("record size %d, body %d: more than one record", rs, len(body))
	}
	senderPub, err := ecdh.P256().NewPublicKey(body[21 : 21+idlen])
	if err != nil {
		return nil, fmt.Errorf("sender key: %v", err)
	}
	ciphertext := body[21+idlen:]
	shared, err := d.priv.ECDH(senderPub)
	if err != nil {
		return nil, err
	}
	// RFC 8291 3.4: IKM from the shared secret and the auth secret, keyed by both public keys.
	keyInfo := "WebPush: info\x00" + string(d.priv.PublicKey().Bytes()) + string(senderPub.Bytes())
	ikm, err := hkdf.Key(sha256.New, shared, d.auth, keyInfo, 32)
	if err != nil {
		return nil, err
	}
	// RFC 8188 2.2, 2.3: the content key and nonce from IKM and the salt.
	prk, err := hkdf.Extract(sha256.New, ikm, salt)
	if err != nil {
		return nil, err
	}
	cek, err := hkdf.Expand(sha256.New, prk, "Content-Encoding: aes128gcm\x00", 16)
	if err != nil {
		return nil, err
	}
	nonce, err := hkdf.Expand(sha256.New, prk, "Content-Encoding: nonce\x00", 12)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(cek)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	plain, err := gcm.Open(nil, nonce, ciphertext, nil)
	if err != nil {
		return nil, fmt.Errorf("open: %v", err)
	}
	// The last (only) record: the data, the delimiter 2, then zero padding.
	plain = bytes.TrimRight(plain, "\x00")
	if len(plain) == 0 || plain[len(plain)-1] != 2 {
		return nil, errors.New("no last-record delimiter")
	}
	return plain[:len(plain)-1], nil
}

// TrustingClient is an HTTP client that trusts the certificates of the services.
func TrustingClient(fakes ...*Server) *http.Client {
	pool := x509.NewCertPool()
	for _, f := range fakes {
		pool.AddCert(f.srv.Certificate())
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{RootCAs: pool}
	return &http.Client{Transport: t}
}
