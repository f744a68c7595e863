package push_test

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/commongrounds/commongrounds/push"
)

// FuzzParseSubscription: whatever a client sends, ParseSubscription answers without panicking,
// and what it accepts is an https endpoint on an allowed host with keys of the right sizes.
func FuzzParseSubscription(f *testing.F) {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	svc, err := push.New(nil, push.Options{
		PrivateKey: key, Subject: "mailto:ops@commongrounds.example",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Registerer: prometheus.NewRegistry(),
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(svc.Close)
	priv, _ := ecdh.P256().GenerateKey(rand.Reader)
	p256dh := base64.RawURLEncoding.EncodeToString(priv.PublicKey().Bytes())
	auth := base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{7}, 16))
	f.Add("https://fcm.googleapis.com/fcm/send/abc:APA91b", p256dh, auth, 0.0)
	f.Add("https://web.push.apple.com/QGuQyavXutnMH", p256dh+"==", auth+"==", 1.8934560e12)
	f.Add("https://wns2-by3p.notify.windows.com/w/?token=BQYAAA", p256dh, auth, -1.0)
	f.Add("https://fcm.googleapis.com.evil.example/x", p256dh, auth, 0.0)
	f.Add("https://fcm.googleapis.com:8443/x", "BAAA", "A", 0.0)
	f.Add("http://updates.push.services.mozilla.com/wpush/v2/x", p256dh, auth, 0.0)
	f.Fuzz(func(t *testing.T, endpoint, p256dh, auth string, exp float64) {
		sub, err := svc.ParseSubscription(endpoint, p256dh, auth, &exp)
		if err != nil {
			return
		}
		u, perr := url.Parse(sub.Endpoint)
		if perr != nil || u.Scheme != "https" || len(sub.P256dh) != 65 || len(sub.Auth) != 16 || sub.ExpiresAt == nil {
			t.Fatalf("accepted %q %q %q %v", endpoint, p256dh, auth, exp)
		}
		host := strings.ToLower(u.Hostname())
		allowed := false
		for _, h := range push.DefaultAllowedHosts {
			if host == h || strings.HasPrefix(h, "*.") && strings.HasSuffix(host, h[1:]) {
				allowed = true
			}
		}
		if !allowed || (u.Port() != "" && u.Port() != "443") {
			t.Fatalf("accepted the host %q of %q", u.Host, endpoint)
		}
	})
}
