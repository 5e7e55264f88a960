package node

import (
	"testing"
	"time"
)

func TestCIDRSetHandsOutSlashTwentyFours(t *testing.T) {
	s, err := NewCIDRSet("10.244.0.0/16", 24)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.At(0); got != "10.244.0.0/24" {
		t.Errorf("first: %s", got)
	}
	if got := s.At(255); got != "10.244.255.0/24" {
		t.Errorf("last: %s", got)
	}
	next, err := s.Next(map[string]bool{"10.244.0.0/24": true, "10.244.1.0/24": true})
	if err != nil || next != "10.244.2.0/24" {
		t.Errorf("next: %s %v", next, err)
	}
	full := map[string]bool{}
	for i := 0; i < 256; i++ {
		full[s.At(i)] = true
	}
	if _, err := s.Next(full); err == nil {
		t.Error("a full set handed out a CIDR")
	}
	if _, err := NewCIDRSet("10.244.0.0/16", 8); err == nil {
		t.Error("mask shorter than the cluster CIDR accepted")
	}
}

func TestExpired(t *testing.T) {
	now := time.Now()
	if Expired(now.Add(-10*time.Second), now, 40*time.Second) {
		t.Error("10 s old heartbeat expired")
	}
	if !Expired(now.Add(-41*time.Second), now, 40*time.Second) {
		t.Error("41 s old heartbeat not expired")
	}
}
