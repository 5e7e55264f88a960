// Package endpoints holds the endpoints benchmark: with 1,000 services each
// selecting one pod, the time from a pod turning Ready (UpdateStatus, as an
// agent writes it) to its address being ready in the service's Endpoints and
// in its EndpointSlice, both seen on watches, over 1,000 flips, against a
// real `wharf up` on loopback ports.
//
// It runs only with WHARF_BENCH=1:
//
//	WHARF_BENCH=1 go test -count=1 -v -run TestEndpointsBench ./bench/endpoints
//
// so a plain `go test ./...` skips it. $WHARF_BENCH_OUT receives the table.
package endpoints
