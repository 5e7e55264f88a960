package dns

import (
	"context"
	"errors"
	"net"
	"slices"

	"github.com/miekg/dns"
	"github.com/wharf-io/wharf/internal/dns/records"
)

// advertisedUDPSize is the EDNS0 buffer size in our answers: the DNS flag
// day 2020 size.
const advertisedUDPSize = 1232

// maxCNAMEChain bounds how many CNAMEs an answer follows.
const maxCNAMEChain = 8

// Records answers the cluster zone; *records.Index is one. ours is false
// for a name the caller must forward.
type Records interface {
	Lookup(qname string, qtype uint16) (res records.Result, ours bool)
}

// Forwarder answers every other name; *forward.Forwarder is one. The answer
// carries the request's ID and question and no OPT record.
type Forwarder interface {
	Forward(ctx context.Context, req *dns.Msg) (*dns.Msg, error)
}

// Handler is the DNS request handler: cluster names from Records,
// everything else through Forwarder (SERVFAIL when it is nil or fails).
type Handler struct {
	Records   Records
	Forwarder Forwarder
}

// ServeDNS answers one request, truncating a UDP answer to the client's
// buffer size (512 without EDNS0) with TC set, so the client asks again
// over TCP.
func (h *Handler) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	resp := h.Answer(context.Background(), req)
	resp.Truncate(maxResponseSize(req, w.LocalAddr()))
	_ = w.WriteMsg(resp) // the client is gone; nothing to do
}

// maxResponseSize is the largest answer the client accepts over the
// transport it asked on.
func maxResponseSize(req *dns.Msg, local net.Addr) int {
	if _, tcp := local.(*net.TCPAddr); tcp {
		return dns.MaxMsgSize
	}
	if opt := req.IsEdns0(); opt != nil {
		return max(dns.MinMsgSize, int(opt.UDPSize()))
	}
	return dns.MinMsgSize
}

// Answer answers req, whatever the transport: untruncated, with an OPT
// record if req has one.
func (h *Handler) Answer(ctx context.Context, req *dns.Msg) *dns.Msg {
	resp := new(dns.Msg)
	resp.SetReply(req)
	resp.RecursionAvailable = true
	opt := req.IsEdns0()
	switch {
	case len(req.Question) != 1:
		resp.Rcode = dns.RcodeFormatError
	case opt != nil && opt.Version() != 0:
		resp.Rcode = dns.RcodeBadVers // RFC 6891 section 6.1.3
	default:
		h.answer(ctx, req, resp)
	}
	if opt != nil {
		resp.SetEdns0(advertisedUDPSize, opt.Do())
	}
	return resp
}

// answer fills resp for req's question.
func (h *Handler) answer(ctx context.Context, req, resp *dns.Msg) {
	q := req.Question[0]
	if q.Qclass == dns.ClassINET || q.Qclass == dns.ClassANY {
		if res, ours := h.Records.Lookup(q.Name, q.Qtype); ours {
			resp.Authoritative = true
			// Clipped: the OPT record appended later must not write into
			// a Records implementation's shared slices.
			resp.Rcode, resp.Answer, resp.Ns, resp.Extra = res.Rcode, slices.Clip(res.Answer), res.Ns, slices.Clip(res.Extra)
			if q.Qtype != dns.TypeCNAME {
				h.followCNAME(ctx, req, resp)
			}
			return
		}
	}
	m, err := h.forward(ctx, req)
	if err != nil {
		resp.Rcode = dns.RcodeServerFailure
		return
	}
	resp.Rcode, resp.Answer, resp.Ns, resp.Extra = m.Rcode, m.Answer, m.Ns, m.Extra
	resp.Authoritative, resp.AuthenticatedData = m.Authoritative, m.AuthenticatedData
}

func (h *Handler) forward(ctx context.Context, req *dns.Msg) (*dns.Msg, error) {
	if h.Forwarder == nil {
		return nil, errNoForwarder
	}
	return h.Forwarder.Forward(ctx, req)
}

// followCNAME completes an answer ending in a CNAME (an ExternalName
// service) with the target's records, as the specification's example
// shows: from the zone for a cluster name, else through the forwarder. The
// rcode becomes the last name's (RFC 6604); if the target cannot be
// resolved the CNAME stands alone.
func (h *Handler) followCNAME(ctx context.Context, req, resp *dns.Msg) {
	qtype := req.Question[0].Qtype
	for range maxCNAMEChain {
		n := len(resp.Answer)
		if n == 0 {
			return
		}
		cname, ok := resp.Answer[n-1].(*dns.CNAME)
		if !ok {
			return
		}
		if res, ours := h.Records.Lookup(cname.Target, qtype); ours {
			resp.Answer = append(resp.Answer, res.Answer...)
			resp.Rcode, resp.Ns = res.Rcode, res.Ns
			continue
		}
		q := new(dns.Msg)
		q.SetQuestion(cname.Target, qtype)
		q.RecursionDesired = true
		if opt := req.IsEdns0(); opt != nil {
			q.SetEdns0(opt.UDPSize(), opt.Do())
		}
		m, err := h.forward(ctx, q)
		if err != nil {
			return
		}
		// The forwarder's answer chases its own CNAMEs.
		resp.Answer = append(resp.Answer, m.Answer...)
		resp.Rcode, resp.Ns = m.Rcode, nil
		return
	}
}

var errNoForwarder = errors.New("no forwarder configured")
