// upstream-go: what upstream's Go tools do, written with the same Go standard library
// packages they use (archive/zip, crypto/ed25519, crypto/x509, encoding/json), as an
// independent second implementation for interop tests.
//
//	upstream-go make DIR             root + 2 leaves (stmgr's certificate profile),
//	                                 DIR/upstream.{zip,json} signed by both leaves
//	upstream-go verify ROOTS STEM N  verify STEM.{zip,json} like stboot v0.2.2
//	                                 (x509 Verify with Go's defaults, Ed25519 over
//	                                 sha256(zip)); exit 0 iff valid >= N
package main

import (
	"archive/zip"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

type manifest struct {
	Version   int    `json:"version"`
	Label     string `json:"label"`
	Kernel    string `json:"kernel"`
	Initramfs string `json:"initramfs"`
	Cmdline   string `json:"cmdline"`
}

type descriptor struct {
	Version      int      `json:"version"`
	PkgURL       string   `json:"os_pkg_url"`
	Certificates [][]byte `json:"certificates"`
	Signatures   [][]byte `json:"signatures"`
}

func die(f string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "upstream-go: "+f+"\n", a...)
	os.Exit(2)
}

func cn(pub ed25519.PublicKey) pkix.Name {
	h := sha256.Sum256(pub)
	return pkix.Name{CommonName: base64.StdEncoding.EncodeToString(h[:])}
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		die("%v", err)
	}
	return n
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func mk(dir string) {
	now := time.Now()
	rootPub, rootKey, _ := ed25519.GenerateKey(rand.Reader)
	rootTmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: cn(rootPub), Issuer: cn(rootPub),
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(72 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		BasicConstraintsValid: true, IsCA: true,
	}
	rootDER, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, rootPub, rootKey)
	if err != nil {
		die("root: %v", err)
	}
	root, _ := x509.ParseCertificate(rootDER)
	os.WriteFile(filepath.Join(dir, "rootcert.pem"), pemCert(rootDER), 0o644)

	// the archive, as ospkg.CreateOSPackage + zip() write it
	kernel := bytes.Repeat([]byte("upstream kernel "), 20000)
	copy(kernel[0x202:], "HdrS") // the x86 boot protocol's magic: stboot boots bzImages only
	initrd := bytes.Repeat([]byte("upstream initrd "), 3000)
	var zbuf bytes.Buffer
	zw := zip.NewWriter(&zbuf)
	zw.Create("boot/")
	for _, f := range []struct {
		name string
		data []byte
	}{{"boot/vmlinuz", kernel}, {"boot/initrd.cpio", initrd}} {
		w, _ := zw.Create(f.name)
		w.Write(f.data)
	}
	m, _ := json.MarshalIndent(manifest{1, "upstream OS", "boot/vmlinuz", "boot/initrd.cpio", "console=ttyS0 upstream=1"}, "", "  ")
	w, _ := zw.Create("manifest.json")
	w.Write(m)
	zw.Close()
	z := zbuf.Bytes()
	digest := sha256.Sum256(z)

	d := descriptor{Version: 1, PkgURL: "upstream.zip"}
	for i := 0; i < 2; i++ {
		pub, key, _ := ed25519.GenerateKey(rand.Reader)
		tmpl := &x509.Certificate{
			SerialNumber: serial(), Subject: cn(pub),
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(72 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, root, pub, rootKey)
		if err != nil {
			die("leaf: %v", err)
		}
		d.Certificates = append(d.Certificates, pemCert(der))
		d.Signatures = append(d.Signatures, ed25519.Sign(key, digest[:]))
	}
	j, _ := json.MarshalIndent(d, "", "  ")
	os.WriteFile(filepath.Join(dir, "upstream.zip"), z, 0o644)
	os.WriteFile(filepath.Join(dir, "upstream.json"), j, 0o644)
}

func verify(rootsFile, stem string, threshold int) {
	rootsPEM, err := os.ReadFile(rootsFile)
	if err != nil {
		die("%v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(rootsPEM) {
		die("no roots in %s", rootsFile)
	}
	z, err := os.ReadFile(stem + ".zip")
	if err != nil {
		die("%v", err)
	}
	dj, err := os.ReadFile(stem + ".json")
	if err != nil {
		die("%v", err)
	}
	var d descriptor
	if err := json.Unmarshal(dj, &d); err != nil {
		die("descriptor: %v", err)
	}
	if d.Version != 1 {
		die("descriptor version %d", d.Version)
	}
	// the archive must be readable by Go's archive/zip, with the manifest's entries
	zr, err := zip.NewReader(bytes.NewReader(z), int64(len(z)))
	if err != nil {
		die("zip: %v", err)
	}
	files := map[string]*zip.File{}
	for _, f := range zr.File {
		if _, ok := files[f.Name]; !ok {
			files[f.Name] = f
		}
	}
	read := func(name string) []byte {
		f, ok := files[name]
		if !ok {
			die("zip: no entry %q", name)
		}
		r, err := f.Open()
		if err != nil {
			die("zip %s: %v", name, err)
		}
		b, err := io.ReadAll(r)
		if err != nil {
			die("zip %s: %v", name, err)
		}
		return b
	}
	var m manifest
	if err := json.Unmarshal(read("manifest.json"), &m); err != nil || m.Version != 1 {
		die("manifest: %v", err)
	}
	if len(read(m.Kernel)) == 0 || len(read(m.Initramfs)) == 0 {
		die("empty kernel or initramfs")
	}
	digest := sha256.Sum256(z)
	valid := 0
	var used []*x509.Certificate
	for i, sig := range d.Signatures {
		block, _ := pem.Decode(d.Certificates[i])
		if block == nil || block.Type != "CERTIFICATE" {
			die("certificate %d: not PEM", i)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			die("certificate %d: %v", i, err)
		}
		if _, err := cert.Verify(x509.VerifyOptions{Roots: pool}); err != nil {
			fmt.Printf("skip signature %d: invalid certificate: %v\n", i, err)
			continue
		}
		dup := false
		for _, u := range used {
			dup = dup || u.Equal(cert)
		}
		if dup {
			fmt.Printf("skip signature %d: duplicate\n", i)
			continue
		}
		used = append(used, cert)
		pub, ok := cert.PublicKey.(ed25519.PublicKey)
		if !ok || !ed25519.Verify(pub, digest[:], sig) {
			fmt.Printf("skip signature %d: verification failed\n", i)
			continue
		}
		valid++
	}
	fmt.Printf("Signatures: %d found, %d valid, %d required\n", len(d.Signatures), valid, threshold)
	fmt.Printf("manifest: label %q cmdline %q\n", m.Label, m.Cmdline)
	if valid < threshold {
		os.Exit(1)
	}
}

func main() {
	if len(os.Args) == 3 && os.Args[1] == "make" {
		mk(os.Args[2])
		return
	}
	if len(os.Args) == 5 && os.Args[1] == "verify" {
		var n int
		fmt.Sscan(os.Args[4], &n)
		verify(os.Args[2], os.Args[3], n)
		return
	}
	die("usage: upstream-go make DIR | upstream-go verify ROOTS STEM THRESHOLD")
}
