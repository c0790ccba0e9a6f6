package wszero

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
)

// writeCert makes a self-signed certificate for hosts in dir and returns
// its files and the parsed certificate.
func writeCert(t *testing.T, dir string, hosts ...string) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	certPEM, keyPEM, err := selfSignedCert(hosts, time.Now())
	require.NoError(t, err)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(certFile, certPEM, 0o644))
	require.NoError(t, os.WriteFile(keyFile, keyPEM, 0o600))
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	require.NoError(t, err)
	return certFile, keyFile, pair.Leaf
}

// trusting returns a TLS config that trusts cert alone.
func trusting(cert *x509.Certificate) *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{RootCAs: pool}
}

// pinning returns a TLS config that trusts the one certificate whose
// fingerprint is fp, as a person comparing the printed fingerprint does.
func pinning(fp string) *tls.Config {
	return &tls.Config{
		InsecureSkipVerify: true, // replaced by the check below
		VerifyConnection: func(cs tls.ConnectionState) error {
			if got := fingerprint(cs.PeerCertificates[0]); got != fp {
				return errors.New("certificate fingerprint " + got + ", want " + fp)
			}
			return nil
		},
	}
}

// TestServeTLS: Serve over HTTPS on a listener the program opened.
func TestServeTLS(t *testing.T) {
	certFile, keyFile, cert := writeCert(t, t.TempDir(), "localhost", "127.0.0.1")
	s := New(quiet())
	s.On("ping", func(c *Client) string { return "pong" })
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- s.ServeTLS(l, certFile, keyFile) }()

	d := &websocket.Dialer{TLSClientConfig: trusting(cert), HandshakeTimeout: testTimeout}
	p := dialURL(t, d, "wss://"+l.Addr().String()+"/ws", nil)
	require.Equal(t, "pong", p.call(1, map[string]any{"op": "ping"})["result"])
	require.NoError(t, s.Shutdown(context.Background()))
	require.ErrorIs(t, receive(t, served, "ServeTLS to return"), http.ErrServerClosed)

	t.Run("a missing certificate is named, and the listener closed", func(t *testing.T) {
		s := New(quiet())
		defer s.Shutdown(context.Background())
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		err = s.ServeTLS(l, "nowhere/cert.pem", keyFile)
		require.ErrorContains(t, err, "cannot use the certificate nowhere/cert.pem with the key "+keyFile)
		_, err = net.Dial("tcp", l.Addr().String())
		require.Error(t, err)
	})
}

func TestListenAndServeTLS(t *testing.T) {
	certFile, keyFile, cert := writeCert(t, t.TempDir(), "localhost", "127.0.0.1")
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "index.html"), []byte("<h1>secure</h1>"), 0o644))
	s := New(quiet(), WithStatic(dir), WithAuthenticate(func(r *http.Request) (any, error) {
		if r.TLS == nil {
			return nil, errors.New("not over TLS")
		}
		return "tls " + tls.VersionName(r.TLS.Version), nil
	}))
	s.On("whoami", func(c *Client) any { return c.Identity() })
	addrs := make(chan net.Addr, 1)
	s.onServe = func(a net.Addr) { addrs <- a }
	served := make(chan error, 1)
	go func() { served <- s.ListenAndServeTLS("127.0.0.1:0", certFile, keyFile) }()
	addr := receive(t, addrs, "the server to listen").String()

	// The page comes over HTTPS, HTTP/2 offered.
	hc := &http.Client{Timeout: testTimeout, Transport: &http.Transport{TLSClientConfig: trusting(cert), ForceAttemptHTTP2: true}}
	resp, err := hc.Get("https://" + addr + "/")
	require.NoError(t, err)
	resp.Body.Close()
	hc.CloseIdleConnections()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, 2, resp.ProtoMajor)

	// The WebSocket over wss.
	d := &websocket.Dialer{TLSClientConfig: trusting(cert), HandshakeTimeout: testTimeout}
	p := dialURL(t, d, "wss://"+addr+"/ws", nil)
	require.Equal(t, "tls TLS 1.3", p.call(1, map[string]any{"op": "whoami"})["result"])

	// A client that does not trust the certificate gets no connection.
	_, _, err = websocket.DefaultDialer.Dial("wss://"+addr+"/ws", nil)
	var unknown x509.UnknownAuthorityError
	require.ErrorAs(t, err, &unknown)

	// Shutdown ends it all as without TLS.
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(t.Context()) }()
	ce := p.closeErr()
	require.Equal(t, websocket.CloseGoingAway, ce.Code)
	require.NoError(t, receive(t, shut, "Shutdown"))
	require.ErrorIs(t, receive(t, served, "ListenAndServeTLS to return"), http.ErrServerClosed)
	require.ErrorIs(t, s.ListenAndServeTLS("127.0.0.1:0", certFile, keyFile), http.ErrServerClosed)

	t.Run("bad files are an error before listening", func(t *testing.T) {
		s := New(quiet())
		defer s.Shutdown(t.Context())
		err := s.ListenAndServeTLS("127.0.0.1:0", keyFile, certFile) // swapped
		require.ErrorContains(t, err, "wszero: cannot use the certificate "+keyFile+" with the key "+certFile)
		err = s.ListenAndServeTLS("127.0.0.1:0", filepath.Join(dir, "missing.pem"), keyFile)
		require.ErrorContains(t, err, "no such file")
	})
}

func TestSelfSignedCert(t *testing.T) {
	now := time.Now()
	certPEM, keyPEM, err := selfSignedCert([]string{"localhost", "127.0.0.1", "::1", "teacher-laptop.local", "192.168.1.20"}, now)
	require.NoError(t, err)
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	require.NoError(t, err)
	leaf := pair.Leaf
	key, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	require.True(t, ok, "an ECDSA key")
	require.Equal(t, elliptic.P256(), key.Curve)
	for _, h := range []string{"localhost", "127.0.0.1", "::1", "teacher-laptop.local", "192.168.1.20"} {
		require.NoError(t, leaf.VerifyHostname(h), h)
	}
	require.Error(t, leaf.VerifyHostname("example.com"))
	require.Equal(t, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, leaf.ExtKeyUsage)
	require.False(t, leaf.IsCA)
	require.WithinDuration(t, now.Add(teachingCertLife), leaf.NotAfter, time.Minute)
	require.True(t, leaf.NotBefore.Before(now))
	require.Regexp(t, `^([0-9A-F]{2}:){31}[0-9A-F]{2}$`, fingerprint(leaf))
	require.Contains(t, string(keyPEM), "PRIVATE KEY")
}

func TestCachedCert(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wszero")
	hosts := []string{"localhost", "127.0.0.1"}
	now := time.Now()

	first, made, err := cachedCert(dir, hosts, now)
	require.NoError(t, err)
	require.Equal(t, " just now (kept in "+dir+" for next time)", made)
	info, err := os.Stat(filepath.Join(dir, "teaching-key.pem"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm(), "the key is for this user only")

	again, made, err := cachedCert(dir, hosts, now.Add(time.Hour))
	require.NoError(t, err)
	require.Equal(t, " (kept in "+dir+")", made)
	require.Equal(t, fingerprint(first.Leaf), fingerprint(again.Leaf), "the next run serves the same certificate: browsers do not warn again")

	tests := []struct {
		name  string
		hosts []string
		at    time.Time
	}{
		{"a new network address", append(hosts, "10.1.2.3"), now},
		{"a day before it expires", hosts, now.Add(teachingCertLife - 12*time.Hour)},
	}
	for _, tt := range tests {
		t.Run(tt.name+" makes a new one", func(t *testing.T) {
			c, made, err := cachedCert(dir, tt.hosts, tt.at)
			require.NoError(t, err)
			require.Contains(t, made, "just now")
			require.NotEqual(t, fingerprint(first.Leaf), fingerprint(c.Leaf))
		})
	}
	t.Run("with no cache folder it lives in memory", func(t *testing.T) {
		c, made, err := cachedCert("", hosts, now)
		require.NoError(t, err)
		require.Equal(t, " just now, for this run only, so browsers will warn again next time", made)
		require.NoError(t, c.Leaf.VerifyHostname("localhost"))
	})
	t.Run("an unwritable cache folder is no failure", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "a-file")
		require.NoError(t, os.WriteFile(file, nil, 0o644))
		_, made, err := cachedCert(filepath.Join(file, "wszero"), hosts, now)
		require.NoError(t, err)
		require.Contains(t, made, "for this run only")
	})
}

func TestTeachingTLSFromEnvironment(t *testing.T) {
	certFile, keyFile, cert := writeCert(t, t.TempDir(), "localhost")
	t.Setenv(envTLSCert, certFile)
	t.Setenv(envTLSKey, keyFile)
	cfg, note, err := teachingTLS([]string{"localhost"})
	require.NoError(t, err)
	require.Equal(t, fingerprint(cert), fingerprint(cfg.Certificates[0].Leaf))
	require.Equal(t, "Using the certificate in "+certFile+" (SHA-256 fingerprint "+fingerprint(cert)+").\n", note)

	t.Setenv(envTLSKey, "")
	_, _, err = teachingTLS([]string{"localhost"})
	require.EqualError(t, err, "wszero: set both WSZERO_TLS_CERT and WSZERO_TLS_KEY (to the PEM files of your certificate and its key), "+
		"or neither, to let wszero make a certificate")

	t.Setenv(envTLSKey, certFile)
	_, _, err = teachingTLS([]string{"localhost"})
	require.ErrorContains(t, err, "wszero: cannot use the certificate in WSZERO_TLS_CERT="+certFile)
}

func TestTeachingHosts(t *testing.T) {
	hosts := teachingHosts()
	require.Subset(t, hosts, []string{"localhost", "127.0.0.1", "::1"})
	require.Subset(t, hosts, lanAddresses(), "the rest of the class can open the page")
}

var fingerprintLine = regexp.MustCompile(`^    ((?:[0-9A-F]{2}:){31}[0-9A-F]{2})$`)

// waitForTLS reads the process's output until the fingerprint line
// and the ready line, and returns the fingerprint and the port.
func (p *serverProcess) waitForTLS(t *testing.T) (fp, port string) {
	t.Helper()
	deadline := time.After(testTimeout * 2)
	for {
		select {
		case line := <-p.lines:
			if m := fingerprintLine.FindStringSubmatch(line); m != nil {
				fp = m[1]
			}
			if m := localURL.FindStringSubmatch(line); m != nil {
				require.True(t, strings.HasPrefix(m[0], "https://"), line)
				port = m[1]
			}
			if line == "Press Ctrl-C to stop." && port != "" {
				require.NotEmpty(t, fp, "the fingerprint is printed; stdout:\n%s", p.stdout)
				return fp, port
			}
		case <-deadline:
			t.Fatalf("the server did not print its address; stdout:\n%s\nstderr:\n%s", p.stdout, p.stderr)
		}
	}
}

func TestRunServerTLS(t *testing.T) {
	cache := t.TempDir()
	env := []string{helperTLSEnv + "=1", "XDG_CACHE_HOME=" + cache, "HOME=" + cache, envTLSCert + "=", envTLSKey + "="}
	dir := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(dir, "static"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "static", "index.html"), []byte("<h1>secure page</h1>"), 0o644))

	run := func(t *testing.T) string {
		p := startServerProcess(t, dir, "0", env...)
		fp, port := p.waitForTLS(t)
		out := p.stdout.String()
		require.Contains(t, out, "Browsers do not know it")
		require.Contains(t, out, `choose "Advanced" and "Proceed"`)

		hc := &http.Client{Timeout: testTimeout, Transport: &http.Transport{TLSClientConfig: pinning(fp)}}
		defer hc.CloseIdleConnections()
		resp, err := hc.Get("https://localhost:" + port + "/")
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)

		d := &websocket.Dialer{TLSClientConfig: pinning(fp), HandshakeTimeout: testTimeout}
		conn, _, err := d.Dial("wss://127.0.0.1:"+port+"/ws", nil)
		require.NoError(t, err)
		defer conn.Close()
		pc := &peer{t: t, conn: conn}
		pc.expect("hello")
		require.Equal(t, map[string]any{"x": 1.0}, pc.call(1, map[string]any{"op": "echo", "x": 1})["result"])

		require.NoError(t, p.cmd.Process.Signal(os.Interrupt))
		require.Equal(t, websocket.CloseGoingAway, pc.closeErr().Code)
		require.Equal(t, 0, p.waitExit(t), "stderr: %s", p.stderr)
		return fp
	}
	var first string
	t.Run("first run makes a certificate", func(t *testing.T) { first = run(t) })
	t.Run("the next run serves the same one", func(t *testing.T) {
		require.Equal(t, first, run(t))
	})
	t.Run("a certificate of one's own", func(t *testing.T) {
		certFile, keyFile, cert := writeCert(t, t.TempDir(), "localhost", "127.0.0.1")
		p := startServerProcess(t, dir, "0", append(env, envTLSCert+"="+certFile, envTLSKey+"="+keyFile)...)
		port := p.waitForPort(t)
		require.Contains(t, p.stdout.String(), "Using the certificate in "+certFile)
		d := &websocket.Dialer{TLSClientConfig: trusting(cert), HandshakeTimeout: testTimeout}
		conn, _, err := d.Dial("wss://localhost:"+port+"/ws", nil)
		require.NoError(t, err)
		conn.Close()
		require.NoError(t, p.cmd.Process.Signal(os.Interrupt))
		require.Equal(t, 0, p.waitExit(t))
	})
	t.Run("half a certificate is an error", func(t *testing.T) {
		p := startServerProcess(t, dir, "0", append(env, envTLSCert+"=/nowhere/cert.pem")...)
		require.Equal(t, 1, p.waitExit(t))
		require.Contains(t, p.stderr.String(), "set both WSZERO_TLS_CERT and WSZERO_TLS_KEY")
	})
}
