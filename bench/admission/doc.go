// Package admission benchmarks service creates with cluster IP and node port
// allocation and quota admission on, against the same creates with both off
// (headless services in a namespace without a quota), in one run.
// Run it with `WHARF_BENCH=1 go test -v -run TestAdmissionBench ./bench/admission/`.
package admission
