package wszero

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The environment variables that give RunServerTLS a certificate of one's own.
const (
	envTLSCert = "WSZERO_TLS_CERT"
	envTLSKey  = "WSZERO_TLS_KEY"
)

// teachingCertLife is how long a certificate RunServerTLS makes is valid.
const teachingCertLife = 365 * 24 * time.Hour

// teachingTLS returns what RunServerTLS serves with: the certificate in
// $WSZERO_TLS_CERT and $WSZERO_TLS_KEY when they are set, else one made for
// hosts, kept in the user's cache folder and used again while it is valid
// for them. note is what the user needs to know about it.
func teachingTLS(hosts []string) (cfg *tls.Config, note string, err error) {
	certFile, keyFile := os.Getenv(envTLSCert), os.Getenv(envTLSKey)
	if certFile != "" || keyFile != "" {
		if certFile == "" || keyFile == "" {
			return nil, "", fmt.Errorf("wszero: set both %s and %s (to the PEM files of your certificate and its key), or neither, to let wszero make a certificate", envTLSCert, envTLSKey)
		}
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, "", fmt.Errorf("wszero: cannot use the certificate in %s=%s with the key in %s=%s: %v", envTLSCert, certFile, envTLSKey, keyFile, err)
		}
		return newTLSConfig(cert), fmt.Sprintf("Using the certificate in %s (SHA-256 fingerprint %s).\n", certFile, fingerprint(cert.Leaf)), nil
	}
	dir := ""
	if cache, err := os.UserCacheDir(); err == nil {
		dir = filepath.Join(cache, "wszero")
	}
	cert, made, err := cachedCert(dir, hosts, time.Now())
	if err != nil {
		return nil, "", err
	}
	note = fmt.Sprintf(`This server uses a certificate that wszero made on this computer%s.
Browsers do not know it, so the first time a browser opens the page it warns
that the connection is not private. That warning is right in general: on the
internet it can mean someone is listening in. Here, check that the
certificate's SHA-256 fingerprint (in the browser, click the warning's "Not
secure", then the certificate) is exactly
    %s
then choose "Advanced" and "Proceed". Do this only for this server, on your
own network. For a certificate of your own, set %s and %s.
`, made, fingerprint(cert.Leaf), envTLSCert, envTLSKey)
	return newTLSConfig(cert), note, nil
}

// cachedCert returns a certificate valid for hosts: the one kept in dir
// when there is one that is still good for a day, else a new one, which it
// keeps in dir. made says which, for the user. With dir "" or unwritable,
// the new certificate is kept in memory only.
func cachedCert(dir string, hosts []string, now time.Time) (cert tls.Certificate, made string, err error) {
	certPath, keyPath := filepath.Join(dir, "teaching-cert.pem"), filepath.Join(dir, "teaching-key.pem")
	if dir != "" {
		if c, err := tls.LoadX509KeyPair(certPath, keyPath); err == nil && certCovers(c.Leaf, hosts, now.Add(24*time.Hour)) {
			return c, " (kept in " + dir + ")", nil
		}
	}
	certPEM, keyPEM, err := selfSignedCert(hosts, now)
	if err != nil {
		return tls.Certificate{}, "", fmt.Errorf("wszero: cannot make a certificate: %v", err)
	}
	cert, err = tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, "", fmt.Errorf("wszero: cannot make a certificate: %v", err)
	}
	made = " just now, for this run only, so browsers will warn again next time"
	if dir != "" && os.MkdirAll(dir, 0o700) == nil &&
		os.WriteFile(keyPath, keyPEM, 0o600) == nil && os.WriteFile(certPath, certPEM, 0o644) == nil {
		made = " just now (kept in " + dir + " for next time)"
	}
	return cert, made, nil
}

// certCovers reports whether leaf is valid at until for every one of hosts.
func certCovers(leaf *x509.Certificate, hosts []string, until time.Time) bool {
	if leaf == nil || until.After(leaf.NotAfter) || until.Before(leaf.NotBefore) {
		return false
	}
	for _, h := range hosts {
		if leaf.VerifyHostname(h) != nil {
			return false
		}
	}
	return true
}

// selfSignedCert makes a self-signed ECDSA P-256 certificate for hosts
// (names and IP addresses), valid for a year from now, and its key, both
// PEM-encoded.
func selfSignedCert(hosts []string, now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	name, _ := os.Hostname()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"wszero (self-signed, for teaching)"}, CommonName: "wszero on " + name},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(teachingCertLife),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

// teachingHosts lists the names and addresses a certificate made by
// RunServerTLS must be valid for: this computer's, and its network
// addresses, so that the rest of the class can open the page.
func teachingHosts() []string {
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	if name, err := os.Hostname(); err == nil && name != "" && name != "localhost" {
		hosts = append(hosts, name)
		if !strings.Contains(name, ".") {
			hosts = append(hosts, name+".local") // as schools' mDNS announces it
		}
	}
	return append(hosts, lanAddresses()...)
}

// fingerprint is the certificate's SHA-256 fingerprint, as browsers show it.
func fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	var b bytes.Buffer
	for i, c := range sum {
		if i > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02X", c)
	}
	return b.String()
}
