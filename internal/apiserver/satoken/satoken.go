// Package satoken issues and verifies service-account tokens: ES256 JWTs
// with upstream's bound-token claims (iss, sub, aud, exp, iat, nbf, jti and
// the kubernetes.io claim naming the namespace, service account and pod),
// signed with the cluster's service-account key. A token authenticates as
// system:serviceaccount:<ns>:<name> in groups system:serviceaccounts and
// system:serviceaccounts:<ns>, as long as the service account (and the pod
// it is bound to) still exists with the same UID.
package satoken

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/util/keyutil"
)

// Issuer is the iss claim, and the default audience, as kubeadm sets them.
const Issuer = "https://kubernetes.default.svc.cluster.local"

// Ref names an object a token is bound to.
type Ref struct {
	Name string `json:"name"`
	UID  string `json:"uid"`
}

// KubernetesClaim is the "kubernetes.io" claim.
type KubernetesClaim struct {
	Namespace      string `json:"namespace"`
	ServiceAccount Ref    `json:"serviceaccount"`
	Pod            *Ref   `json:"pod,omitempty"`
	Node           *Ref   `json:"node,omitempty"`
}

// Claims are a token's claims.
type Claims struct {
	Issuer     string          `json:"iss"`
	Subject    string          `json:"sub"`
	Audience   []string        `json:"aud"`
	Expiry     int64           `json:"exp"`
	IssuedAt   int64           `json:"iat"`
	NotBefore  int64           `json:"nbf"`
	ID         string          `json:"jti"`
	Kubernetes KubernetesClaim `json:"kubernetes.io"`
}

// Signer signs and verifies tokens with one ECDSA P-256 key.
type Signer struct {
	key *ecdsa.PrivateKey
	kid string
}

// NewSigner parses the PEM private key.
func NewSigner(keyPEM []byte) (*Signer, error) {
	k, err := keyutil.ParsePrivateKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("service account key: %w", err)
	}
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, errors.New("service account key is not ECDSA")
	}
	pub, err := keyutil.MarshalPrivateKeyToPEM(ec)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(pub)
	return &Signer{key: ec, kid: base64.RawURLEncoding.EncodeToString(sum[:16])}, nil
}

// Subject is the user name of a service account.
func Subject(namespace, name string) string {
	return "system:serviceaccount:" + namespace + ":" + name
}

// Issue signs a token for the service account (and pod, if given) valid
// for ttl, for audiences (default: the issuer).
func (s *Signer) Issue(k KubernetesClaim, audiences []string, ttl time.Duration, now time.Time) (string, time.Time, error) {
	if len(audiences) == 0 {
		audiences = []string{Issuer}
	}
	exp := now.Add(ttl)
	c := Claims{Issuer: Issuer, Subject: Subject(k.Namespace, k.ServiceAccount.Name), Audience: audiences,
		Expiry: exp.Unix(), IssuedAt: now.Unix(), NotBefore: now.Unix(), ID: string(uuid.NewUUID()), Kubernetes: k}
	header, _ := json.Marshal(map[string]string{"alg": "ES256", "kid": s.kid, "typ": "JWT"})
	payload, err := json.Marshal(c)
	if err != nil {
		return "", time.Time{}, err
	}
	signing := b64(header) + "." + b64(payload)
	digest := sha256.Sum256([]byte(signing))
	r, sv, err := ecdsa.Sign(rand.Reader, s.key, digest[:])
	if err != nil {
		return "", time.Time{}, err
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	sv.FillBytes(sig[32:])
	return signing + "." + b64(sig), exp, nil
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// ErrNotOurs says the token is not a JWT this signer made; other
// authenticators may still accept it.
var ErrNotOurs = errors.New("not a service account token of this cluster")

// Verify checks the signature, issuer, audience and time of a token and
// returns its claims.
func (s *Signer) Verify(token string, audiences []string, now time.Time) (*Claims, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, ErrNotOurs
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(sig) != 64 {
		return nil, ErrNotOurs
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	r, sv := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
	if !ecdsa.Verify(&s.key.PublicKey, digest[:], r, sv) {
		return nil, ErrNotOurs
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, ErrNotOurs
	}
	var c Claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, ErrNotOurs
	}
	if c.Issuer != Issuer {
		return nil, ErrNotOurs
	}
	if now.Unix() >= c.Expiry {
		return nil, errors.New("service account token has expired")
	}
	if now.Unix()+60 < c.NotBefore {
		return nil, errors.New("service account token is not valid yet")
	}
	if len(audiences) == 0 {
		audiences = []string{Issuer}
	}
	if !intersects(c.Audience, audiences) {
		return nil, errors.New("service account token has an audience this server does not accept")
	}
	return &c, nil
}

func intersects(a, b []string) bool {
	for _, x := range a {
		for _, y := range b {
			if x == y {
				return true
			}
		}
	}
	return false
}

// Public returns the verification key (for a JWKS document later).
func (s *Signer) Public() crypto.PublicKey { return s.key.Public() }
