package netexec

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestRootSaysWhoAnsweredAndWhoAsked(t *testing.T) {
	srv := httptest.NewServer(Handler(Config{Hostname: "node-js-abcde", Message: "Whale Type A, Here."}))
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/", nil)
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rep Reply
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		t.Fatal(err)
	}
	if rep.Hostname != "node-js-abcde" || rep.ClientIP != "127.0.0.1" || rep.Message != "Whale Type A, Here." {
		t.Errorf("reply %+v", rep)
	}
	text, _ := http.Get(srv.URL + "/")
	body, _ := io.ReadAll(text.Body)
	text.Body.Close()
	if !strings.HasPrefix(string(body), "Whale Type A, Here.\nhostname: node-js-abcde\n") {
		t.Errorf("text reply %q", body)
	}
}

func TestRunServesHTTPAndUDPUntilCancelled(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	u, _ := net.ListenPacket("udp", "127.0.0.1:0")
	uport := u.LocalAddr().(*net.UDPAddr).Port
	u.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- Run(ctx, Config{HTTPPorts: []int{port}, UDPPort: uport, Hostname: "h"}) }()
	var body []byte
	for i := 0; i < 50; i++ {
		resp, err := http.Get("http://127.0.0.1:" + itoa(port) + "/hostname")
		if err == nil {
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if string(body) != "h" {
		t.Fatalf("/hostname: %q", body)
	}
	c, err := net.Dial("udp", "127.0.0.1:"+itoa(uport))
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	_, _ = c.Write([]byte("ping"))
	buf := make([]byte, 100)
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != "h ping" {
		t.Fatalf("udp echo: %q %v", buf[:n], err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestBytes(t *testing.T) {
	h := Handler(Config{Hostname: "h"})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/bytes?n=200000", nil))
	if rec.Code != 200 || rec.Body.Len() != 200000 {
		t.Errorf("/bytes?n=200000: %d, %d bytes", rec.Code, rec.Body.Len())
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/bytes?n=-1", nil))
	if rec.Code != 400 {
		t.Errorf("/bytes?n=-1: %d", rec.Code)
	}
}
