// A KusciaAPI-shaped HTTPS listener built with Go's own crypto/x509 and crypto/tls, the libraries
// Kuscia uses. Test support only: proves our client context verifies a server certificate that Go
// signed the way Kuscia signs kusciaapi-server.crt, and that Go's RequireAndVerifyClientCert
// accepts the client certificate we mint. The certificate templates follow upstream
// pkg/utils/tls/crypt.go ParseCertWithGenerated (ca.crt) and
// pkg/web/framework/config/tls_server_config.go GenerateServerKeyCerts (server cert); the
// listener follows pkg/utils/tls/cert.go BuildServerTLSConfig. Usage:
//   go_kusciaapi_tls <domain key PEM file> <domainID> <TLS|MTLS> <hostname>
// prints the port, serves POST /healthZ until stdin closes.
package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"time"
)

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

func domainKey(path string) *rsa.PrivateKey {
	data, err := os.ReadFile(path)
	if err != nil {
		fail(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		fail(fmt.Errorf("no PEM block in %s", path))
	}
	if key, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return key
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		fail(err)
	}
	return key.(*rsa.PrivateKey)
}

func main() {
	key := domainKey(os.Args[1])
	domainID, protocol, hostname := os.Args[2], os.Args[3], os.Args[4]

	caTemplate := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: domainID},
		SignatureAlgorithm:    x509.SHA256WithRSA,
		NotBefore:             time.Now(),
		NotAfter:              time.Now().AddDate(50, 0, 0),
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	caRaw, err := x509.CreateCertificate(rand.Reader, caTemplate, caTemplate, &key.PublicKey, key)
	if err != nil {
		fail(err)
	}
	ca, _ := x509.ParseCertificate(caRaw)

	serverKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	serverTemplate := &x509.Certificate{
		SerialNumber: big.NewInt(12345),
		Subject:      pkix.Name{CommonName: "KusciaAPI"},
		NotBefore:    time.Now(),
		NotAfter:     time.Now().AddDate(10, 0, 0),
		KeyUsage:     x509.KeyUsageKeyEncipherment | x509.KeyUsageDigitalSignature,
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"kusciaapi", hostname, "localhost"},
	}
	serverRaw, err := x509.CreateCertificate(rand.Reader, serverTemplate, ca, &serverKey.PublicKey, key)
	if err != nil {
		fail(err)
	}

	config := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{serverRaw}, PrivateKey: serverKey}}}
	if protocol == "MTLS" {
		pool := x509.NewCertPool()
		pool.AddCert(ca)
		config.ClientCAs = pool
		config.ClientAuth = tls.RequireAndVerifyClientCert
	}
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthZ", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":{"code":0,"message":"success","details":[]},"data":{"ready":true}}`)
	})
	server := &http.Server{Handler: mux, TLSConfig: config, ErrorLog: nil}
	fmt.Println(listener.Addr().(*net.TCPAddr).Port)
	go func() {
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	server.ServeTLS(listener, "", "")
}
