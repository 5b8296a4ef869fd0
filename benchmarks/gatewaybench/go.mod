// The gateway benchmark's Go programs (benchmarks/gateway.py builds them into .cache/bench/).
// Standard library only: no module is downloaded.
module gatewaybench

go 1.22
