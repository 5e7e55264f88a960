package apiserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/wharf-io/wharf/internal/pki"
)

// secretsKey is the etcd key of the cluster's shared secrets. It is outside
// the /registry prefix, so no API request can read it.
const secretsKey = "/wharf/cluster-secrets"

// ClusterSecrets are made once per cluster and shared by every server that
// uses the same etcd: the CA, the service-account signing key and the join
// token agents present.
type ClusterSecrets struct {
	CACert         []byte `json:"caCert"`
	CAKey          []byte `json:"caKey"`
	ServiceAccount []byte `json:"serviceAccountKey"`
	JoinToken      string `json:"joinToken"`
}

// CA returns the parsed certificate authority.
func (s *ClusterSecrets) CA() (*pki.CA, error) { return pki.LoadCA(s.CACert, s.CAKey) }

// LoadOrCreateSecrets returns the cluster's secrets, making and storing them
// if this is the first server. The write is a transaction on the key's
// absence, so two servers starting at once agree on one set.
func LoadOrCreateSecrets(ctx context.Context, cli *clientv3.Client) (*ClusterSecrets, error) {
	fresh, err := newSecrets()
	if err != nil {
		return nil, err
	}
	data, err := json.Marshal(fresh)
	if err != nil {
		return nil, err
	}
	resp, err := cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(secretsKey), "=", 0)).
		Then(clientv3.OpPut(secretsKey, string(data))).
		Else(clientv3.OpGet(secretsKey)).
		Commit()
	if err != nil {
		return nil, fmt.Errorf("store cluster secrets in etcd: %w", err)
	}
	if resp.Succeeded {
		return fresh, nil
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 0 {
		return nil, fmt.Errorf("cluster secrets vanished from etcd while reading them")
	}
	var stored ClusterSecrets
	if err := json.Unmarshal(kvs[0].Value, &stored); err != nil {
		return nil, fmt.Errorf("decode cluster secrets from etcd: %w", err)
	}
	return &stored, nil
}

func newSecrets() (*ClusterSecrets, error) {
	ca, err := pki.NewCA("wharf-ca")
	if err != nil {
		return nil, err
	}
	sa, err := pki.NewSigningKeyPEM()
	if err != nil {
		return nil, err
	}
	tok := make([]byte, 24)
	if _, err := rand.Read(tok); err != nil {
		return nil, err
	}
	return &ClusterSecrets{CACert: ca.CertPEM, CAKey: ca.KeyPEM, ServiceAccount: sa, JoinToken: hex.EncodeToString(tok)}, nil
}
