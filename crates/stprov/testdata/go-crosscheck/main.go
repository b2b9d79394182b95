// Cross-check of stprov-rs against Go's crypto/x509, crypto/ed25519 and net/http:
// derives the reference's values for a fixed one-time password and fixed entropy, and
// optionally runs a Go HTTPS client against `stprov remote run`.
package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/big"
	"net/http"
	"os"
	"time"
)

type hkdfStream struct {
	prk, info, prev []byte
	ctr             byte
	buf             []byte
}

func newStream(secret []byte, label string, context int) *hkdfStream {
	m := hmac.New(sha256.New, []byte(fmt.Sprintf("%d", context)))
	m.Write(secret)
	return &hkdfStream{prk: m.Sum(nil), info: []byte("stprov:" + label)}
}

func (h *hkdfStream) Read(p []byte) (int, error) {
	for len(h.buf) < len(p) {
		h.ctr++
		m := hmac.New(sha256.New, h.prk)
		m.Write(h.prev)
		m.Write(h.info)
		m.Write([]byte{h.ctr})
		h.prev = m.Sum(nil)
		h.buf = append(h.buf, h.prev...)
	}
	n := copy(p, h.buf)
	h.buf = h.buf[n:]
	return n, nil
}

func read(r io.Reader, n int) []byte {
	b := make([]byte, n)
	io.ReadFull(r, b)
	return b
}

func cert(otp []byte) []byte {
	pub, priv, _ := ed25519.GenerateKey(newStream(otp, "otp:keygen", 1))
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(0),
		Version:      3,
		NotBefore:    time.Unix(0, 0),
		NotAfter:     time.Unix(math.MaxInt32, math.MaxInt32),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageDataEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"stprov"},
	}
	der, err := x509.CreateCertificate(newStream(otp, "otp:keygen", 2), tmpl, tmpl, pub, priv)
	if err != nil {
		panic(err)
	}
	return der
}

func sshString(b []byte) []byte {
	out := make([]byte, 4)
	binary.BigEndian.PutUint32(out, uint32(len(b)))
	return append(out, b...)
}

func main() {
	password := "stprov-rs cross-check"
	otp := read(newStream([]byte(password), "otp", 1), 32)
	der := cert(otp)
	basic := hex.EncodeToString(read(newStream(otp, "otp:basicAuthPassword", 1), 32))
	if len(os.Args) > 2 && os.Args[1] == "client" {
		pool := x509.NewCertPool()
		c, _ := x509.ParseCertificate(der)
		pool.AddCert(c)
		cl := http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "stprov"}}}
		do := func(method, ep string, body []byte) []byte {
			req, _ := http.NewRequest(method, "https://"+os.Args[2]+"/stprov/v0.0.1/"+ep, bytes.NewBuffer(body))
			req.SetBasicAuth("example-user", basic)
			rsp, err := cl.Do(req)
			if err != nil {
				panic(err)
			}
			defer rsp.Body.Close()
			b, _ := io.ReadAll(rsp.Body)
			if rsp.StatusCode != 200 {
				panic(fmt.Sprintf("%s %s: %d %s", method, ep, rsp.StatusCode, b))
			}
			return b
		}
		ent := make([]byte, 32)
		for i := range ent {
			ent[i] = 2
		}
		body, _ := json.Marshal(struct {
			Entropy   []byte `json:"entropy"`
			Timestamp int64  `json:"timestamp"`
		}{ent, time.Now().Unix()})
		do("POST", "add-data", body)
		fmt.Printf("%s\n", do("GET", "commit", nil))
		return
	}
	if len(os.Args) > 2 && os.Args[1] == "server" {
		_, priv, _ := ed25519.GenerateKey(newStream(otp, "otp:keygen", 1))
		crt := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv}
		auth := func(w http.ResponseWriter, r *http.Request) bool {
			u, p, ok := r.BasicAuth()
			if !ok || u != "example-user" || p != basic {
				http.Error(w, "BasicAuth credentials were insufficient", http.StatusForbidden)
				return false
			}
			return true
		}
		srv := &http.Server{Addr: os.Args[2], TLSConfig: &tls.Config{Certificates: []tls.Certificate{crt}}}
		mux := http.NewServeMux()
		mux.HandleFunc("/stprov/v0.0.1/add-data", func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost || !auth(w, r) {
				return
			}
			var d struct {
				Entropy []byte `json:"entropy"`
			}
			if err := json.NewDecoder(r.Body).Decode(&d); err != nil || len(d.Entropy) != 32 {
				http.Error(w, "bad entropy", http.StatusBadRequest)
			}
		})
		mux.HandleFunc("/stprov/v0.0.1/commit", func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet || !auth(w, r) {
				return
			}
			w.Write([]byte(`{"publickey":"ssh-ed25519 AAAA","fingerprint":"SHA256:go","hostname":"go.example","authentication":"00","identity":"11"}`))
			go func() { time.Sleep(100 * time.Millisecond); os.Exit(0) }()
		})
		srv.Handler = mux
		panic(srv.ListenAndServeTLS("", ""))
	}
	fmt.Printf("password=%s\ncert=%s\nbasic=%s\n", password, hex.EncodeToString(der), basic)
	remote := bytes.Repeat([]byte{1}, 32)
	local := bytes.Repeat([]byte{2}, 32)
	uds := read(newStream(append(remote, local...), "uds", 1), 32)
	r := newStream(uds, "uds:ssh", 1)
	pub, _, _ := ed25519.GenerateKey(r)
	check := binary.BigEndian.Uint32(read(r, 4))
	blob := append(sshString([]byte("ssh-ed25519")), sshString(pub)...)
	sum := sha256.Sum256(blob)
	fmt.Printf("publickey=ssh-ed25519 %s\nfingerprint=SHA256:%s\ncheck=%08x\n", base64.StdEncoding.EncodeToString(blob), base64.RawStdEncoding.EncodeToString(sum[:]), check)
	fmt.Printf("identity=%s\nauthentication=%s\n", hex.EncodeToString(read(newStream(uds, "uds:identity", 1), 32)), hex.EncodeToString(read(newStream(uds, "uds:authentication", 1), 32)))
}
