package cluster

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestNewClientRejects(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	notPEM := write("ca.pem", "not a certificate")
	noColon := write("creds", "justauser\n")
	secret := write("creds-secret", "user-without-colon-s3cr3t\n")
	tests := []struct {
		name string
		cfg  ClientConfig
		want string
	}{
		{"no endpoints", ClientConfig{}, "no endpoints"},
		{"ca without a certificate", ClientConfig{Endpoints: []string{"https://e:2379"}, CAFile: notPEM}, "no PEM certificate"},
		{"missing ca", ClientConfig{Endpoints: []string{"https://e:2379"}, CAFile: filepath.Join(dir, "none")}, "read ca file"},
		{"cert without key", ClientConfig{Endpoints: []string{"https://e:2379"}, CertFile: notPEM}, "go together"},
		{"credentials without a colon", ClientConfig{Endpoints: []string{"http://e:2379"}, CredentialsFile: noColon}, "want user:password"},
		{"credentials file missing", ClientConfig{Endpoints: []string{"http://e:2379"}, CredentialsFile: filepath.Join(dir, "none")}, "read credentials file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewClient(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewClient(%+v) = %v, want an error with %q", tt.cfg, err, tt.want)
			}
		})
	}
	if _, err := NewClient(ClientConfig{Endpoints: []string{"http://e:2379"}, CredentialsFile: secret}); err == nil || strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("a malformed credentials file's error shows its contents: %v", err)
	}
}
