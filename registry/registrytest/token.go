package registrytest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// tokenService and tokenIssuer name the test token server to the registry.
const (
	tokenService = "berth-test-registry"
	tokenIssuer  = "berth-test-token-server"
)

// tokenServer hands out the JWTs the registry's token auth checks (Docker's
// token authentication spec): signed with ES256 by a self-signed
// certificate, which is the registry's root bundle and travels in the x5c
// header.
type tokenServer struct {
	key        *ecdsa.PrivateKey
	certDER    []byte
	user, pass string
	requests   atomic.Int64

	mu      sync.Mutex
	refresh map[string]string // refresh token → user
}

// startTokenServer starts the token server for the test and returns the
// registry's auth section.
func startTokenServer(t testing.TB, dir, user, pass string) (string, *tokenServer) {
	ts := &tokenServer{user: user, pass: pass, refresh: map[string]string{}}
	var err error
	ts.key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: tokenIssuer},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	ts.certDER, err = x509.CreateCertificate(rand.Reader, tmpl, tmpl, &ts.key.PublicKey, ts.key)
	if err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(dir, "token-root.pem")
	if err := os.WriteFile(bundle, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.certDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(ts.serveHTTP))
	t.Cleanup(srv.Close)
	return fmt.Sprintf("auth:\n  token:\n    realm: %s/token\n    service: %s\n    issuer: %s\n    rootcertbundle: %s\n",
		srv.URL, tokenService, tokenIssuer, bundle), ts
}

func (ts *tokenServer) serveHTTP(w http.ResponseWriter, r *http.Request) {
	ts.requests.Add(1)
	if r.URL.Path != "/token" {
		http.NotFound(w, r)
		return
	}
	var subject string
	var scopes []string
	switch r.Method {
	case http.MethodGet:
		if u, p, ok := r.BasicAuth(); ok {
			if !ts.checkPassword(u, p) {
				http.Error(w, `{"details":"incorrect username or password"}`, http.StatusUnauthorized)
				return
			}
			subject = u
		}
		scopes = r.URL.Query()["scope"]
	case http.MethodPost:
		r.ParseForm()
		switch r.PostForm.Get("grant_type") {
		case "refresh_token":
			ts.mu.Lock()
			subject = ts.refresh[r.PostForm.Get("refresh_token")]
			ts.mu.Unlock()
		case "password":
			if ts.checkPassword(r.PostForm.Get("username"), r.PostForm.Get("password")) {
				subject = r.PostForm.Get("username")
			}
		}
		if subject == "" {
			http.Error(w, `{"error":"invalid_grant"}`, http.StatusUnauthorized)
			return
		}
		scopes = strings.Fields(r.PostForm.Get("scope"))
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	token, err := ts.sign(subject, scopes)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	answer := map[string]any{"token": token, "access_token": token, "expires_in": 300,
		"issued_at": time.Now().UTC().Format(time.RFC3339)}
	if subject != "" && (r.URL.Query().Get("offline_token") == "true" || r.PostForm.Get("access_type") == "offline") {
		b := make([]byte, 16)
		rand.Read(b)
		rt := hex.EncodeToString(b)
		ts.mu.Lock()
		ts.refresh[rt] = subject
		ts.mu.Unlock()
		answer["refresh_token"] = rt
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(answer)
}

func (ts *tokenServer) checkPassword(user, pass string) bool {
	return subtle.ConstantTimeCompare([]byte(user), []byte(ts.user)) == 1 &&
		subtle.ConstantTimeCompare([]byte(pass), []byte(ts.pass)) == 1
}

// access is one grant of a token's "access" claim.
type access struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

// grants turns "repository:name:pull,push" scopes into grants: everything
// asked for a logged-in subject, pull only for anonymous ones.
func grants(subject string, scopes []string) []access {
	var out []access
	for _, s := range scopes {
		typ, rest, ok := strings.Cut(s, ":")
		i := strings.LastIndex(rest, ":")
		if !ok || i < 0 {
			continue
		}
		a := access{Type: typ, Name: rest[:i]}
		for _, act := range strings.Split(rest[i+1:], ",") {
			if subject != "" || act == "pull" {
				a.Actions = append(a.Actions, act)
			}
		}
		out = append(out, a)
	}
	return out
}

// sign makes the JWT.
func (ts *tokenServer) sign(subject string, scopes []string) (string, error) {
	now := time.Now()
	jti := make([]byte, 8)
	rand.Read(jti)
	header, err := json.Marshal(map[string]any{
		"typ": "JWT", "alg": "ES256",
		"x5c": []string{base64.StdEncoding.EncodeToString(ts.certDER)},
	})
	if err != nil {
		return "", err
	}
	claims, err := json.Marshal(map[string]any{
		"iss": tokenIssuer, "sub": subject, "aud": tokenService,
		"exp": now.Add(5 * time.Minute).Unix(), "nbf": now.Add(-time.Minute).Unix(), "iat": now.Unix(),
		"jti": hex.EncodeToString(jti), "access": grants(subject, scopes),
	})
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	input := enc.EncodeToString(header) + "." + enc.EncodeToString(claims)
	sum := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, ts.key, sum[:])
	if err != nil {
		return "", err
	}
	// JWS ES256 signatures are r and s, 32 bytes each.
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + enc.EncodeToString(sig), nil
}
