// Package web serves the browser client of Common Grounds: one page, one script and one style
// sheet, embedded in the binary so that the server is the only thing to deploy.
//
// The page is at "/", its service worker at "/sw.js" and its files under "/static/". Every reply carries a strict Content
// Security Policy (scripts and styles from this origin only, no inline code, connections to
// this origin over HTTP and WebSocket only) and an ETag, and is revalidated on every use, so a
// new release reaches browsers at once while an unchanged file costs a 304.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"

	cg "github.com/commongrounds/commongrounds"
)

//go:embed static
var static embed.FS

// file is one embedded file, read once at start.
type file struct {
	data        []byte
	etag        string
	contentType string
}

// files maps a name under static/ ("index.html", "app.js") to its file.
var files = mustLoad()

func mustLoad() map[string]file {
	m := make(map[string]file)
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := static.ReadFile(p)
		if err != nil {
			return fmt.Errorf("read %s: %w", p, err)
		}
		sum := sha256.Sum256(data)
		ctype := mime.TypeByExtension(path.Ext(p))
		if path.Ext(p) == ".webmanifest" {
			ctype = "application/manifest+json"
		}
		if ctype == "" {
			ctype = "application/octet-stream"
		}
		m[strings.TrimPrefix(p, "static/")] = file{
			data:        data,
			etag:        `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`,
			contentType: ctype,
		}
		return nil
	})
	if err != nil {
		panic(fmt.Sprintf("web: load embedded files: %v", err))
	}
	return m
}

// basePolicy is the Content Security Policy of every reply; ContentSecurityPolicy adds the
// WebSocket origins of the request's host to connect-src.
const basePolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"manifest-src 'self'; worker-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; object-src 'none'; " +
	"require-trusted-types-for 'script'"

// ContentSecurityPolicy returns the policy sent with the client when it is requested for host
// (the request's Host header). The page may connect only to its own origin: 'self' for HTTP and,
// spelled out for browsers that do not count WebSocket URLs as 'self', ws:// and wss:// of the
// same host. A host that is not a plain host[:port] adds nothing.
func ContentSecurityPolicy(host string) string {
	connect := "connect-src 'self'"
	if validHost(host) {
		connect += " ws://" + host + " wss://" + host
	}
	return basePolicy + "; " + connect
}

// validHost reports whether h is a host name, IPv4 or bracketed IPv6 address with an optional
// port, and nothing that could break out of a policy directive.
func validHost(h string) bool {
	if h == "" || len(h) > 255 {
		return false
	}
	for _, c := range h {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.', c == '-', c == ':', c == '[', c == ']':
		default:
			return false
		}
	}
	return true
}

// Handler returns the handler of the client: index.html at "/", the service worker at "/sw.js"
// (a worker controls only the pages under its own path, so it lives at the root), and the files
// of the client at "/static/<name>". Other paths answer 404 and methods other than GET and HEAD 405, both as
// problem+json like the rest of the server.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var name string
		switch p := r.URL.Path; {
		case p == "/":
			name = "index.html"
		case p == "/sw.js":
			name = "sw.js"
		case strings.HasPrefix(p, "/static/"):
			name = strings.TrimPrefix(p, "/static/")
		}
		f, ok := files[name]
		if !ok {
			problem(w, cg.ENOTFOUND, "No such file.")
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			problem(w, cg.EMETHODNOTALLOWED, "This route does not take "+r.Method+".")
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy(r.Host))
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cache-Control", "no-cache")
		h.Set("Content-Type", f.contentType)
		h.Set("ETag", f.etag)
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(f.data))
	})
}

// problem writes an RFC 9457 problem reply with the server's machine-readable code.
func problem(w http.ResponseWriter, code, detail string) {
	status := cg.HTTPStatus(code)
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Type   string `json:"type"`
		Title  string `json:"title"`
		Status int    `json:"status"`
		Code   string `json:"code"`
		Detail string `json:"detail"`
	}{"about:blank", http.StatusText(status), status, code, detail})
}
