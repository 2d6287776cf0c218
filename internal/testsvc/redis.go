package testsvc

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Redis is a real redis-server owned by a test.
type Redis struct {
	t    testing.TB
	Port int
	Addr string // 127.0.0.1:port (the TLS port when started WithTLS)
	// TLS holds the certificate files when started WithTLS, else nil.
	TLS *TLSFiles
	// conf is a config file given first (sentinels need one they can rewrite);
	// args are appended to the defaults (cluster mode, replicaof, --sentinel).
	conf string
	args []string
	mu   sync.Mutex
	proc *process
}

// RedisOption configures StartRedis.
type RedisOption func(*redisConfig)

type redisConfig struct{ tls bool }

// WithTLS serves Redis over TLS only (plain port disabled), with a throwaway CA and
// server certificate for 127.0.0.1 written to the test's temp dir (Redis.TLS).
// Clients are not asked for certificates.
func WithTLS() RedisOption { return func(c *redisConfig) { c.tls = true } }

// StartRedis starts redis-server on a free loopback port without persistence and
// stops it when the test ends.
func StartRedis(t testing.TB, opts ...RedisOption) *Redis {
	t.Helper()
	var cfg redisConfig
	for _, o := range opts {
		o(&cfg)
	}
	r := &Redis{t: t, Port: FreePort(t)}
	r.Addr = fmt.Sprintf("127.0.0.1:%d", r.Port)
	if cfg.tls {
		files := WriteTLSFiles(t, t.TempDir())
		r.TLS = &files
	}
	r.Start()
	t.Cleanup(r.Stop)
	return r
}

// URL is the redis:// URL of the server, or its rediss:// URL when started WithTLS.
func (r *Redis) URL() string {
	if r.TLS != nil {
		return "rediss://" + r.Addr + "/0"
	}
	return "redis://" + r.Addr + "/0"
}

// ClientTLSConfig is a client TLS configuration trusting the server's CA (nil
// without TLS), for go-redis Options.TLSConfig.
func (r *Redis) ClientTLSConfig() *tls.Config {
	r.t.Helper()
	if r.TLS == nil {
		return nil
	}
	pemBytes, err := os.ReadFile(r.TLS.CAFile)
	if err != nil {
		r.t.Fatalf("read CA: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		r.t.Fatalf("CA file %s holds no certificate", r.TLS.CAFile)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

// Start (re)starts the server on the same port; data is not kept across restarts.
func (r *Redis) Start() {
	r.t.Helper()
	bin := LookPath(r.t, "redis-server", "make test installs the Debian package redis-server")
	var args []string
	if r.conf != "" {
		args = append(args, r.conf)
	}
	// Its own empty working directory: a replica writes the RDB it receives to
	// dump.rdb there, and any redis-server loads a dump.rdb found in its directory.
	args = append(args, "--dir", r.t.TempDir(), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--protected-mode", "yes")
	if r.TLS != nil {
		args = append(args, "--port", "0", "--tls-port", strconv.Itoa(r.Port),
			"--tls-cert-file", r.TLS.CertFile, "--tls-key-file", r.TLS.KeyFile,
			"--tls-ca-cert-file", r.TLS.CAFile, "--tls-auth-clients", "no")
	} else {
		args = append(args, "--port", strconv.Itoa(r.Port))
	}
	args = append(args, r.args...)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.proc = startProcess(r.t, "redis", bin, args...)
	// A bare TCP connect is enough to know the listener is up, TLS or not.
	if err := waitTCP(r.Addr, 10*time.Second); err != nil {
		tail := r.proc.logTail()
		r.proc.kill()
		r.t.Fatalf("redis-server: %v\n%s", err, tail)
	}
}

// Stop kills the server (like a crash: no shutdown save).
func (r *Redis) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.proc.kill()
	r.proc = nil
}

// Running tells whether the server process is started and has not exited.
func (r *Redis) Running() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.proc != nil && !r.proc.exited()
}

// TLSFiles are PEM files of a throwaway CA and a server certificate it signed.
type TLSFiles struct {
	CAFile   string // the CA certificate
	CertFile string // server certificate, SANs 127.0.0.1 and localhost
	KeyFile  string // server private key
}

// WriteTLSFiles generates a fresh CA (ECDSA P-256) and a server certificate for
// 127.0.0.1/localhost valid for a day, and writes them to dir. Each call makes an
// unrelated CA, so a second call gives a "wrong CA" for negative tests.
func WriteTLSFiles(t testing.TB, dir string) TLSFiles {
	t.Helper()
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("CA key: %v", err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatalf("serial: %v", err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: serial,
		// A distinct name per CA keeps "wrong CA" errors plain (unknown authority)
		// instead of a signature mismatch against a same-named CA.
		Subject:               pkix.Name{CommonName: fmt.Sprintf("flagsync test CA %x", serial)},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatalf("CA certificate: %v", err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatalf("CA certificate: %v", err)
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("server key: %v", err)
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		// ClientAuth too: cluster nodes present it on the TLS cluster bus, which always
		// checks the peer.
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:    []string{"localhost"},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatalf("server certificate: %v", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(srvKey)
	if err != nil {
		t.Fatalf("server key: %v", err)
	}
	f := TLSFiles{
		CAFile:   filepath.Join(dir, "ca.pem"),
		CertFile: filepath.Join(dir, "server.pem"),
		KeyFile:  filepath.Join(dir, "server-key.pem"),
	}
	writePEM(t, f.CAFile, "CERTIFICATE", caDER, 0o644)
	writePEM(t, f.CertFile, "CERTIFICATE", srvDER, 0o644)
	writePEM(t, f.KeyFile, "PRIVATE KEY", keyDER, 0o600)
	return f
}

func writePEM(t testing.TB, path, typ string, der []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
}
