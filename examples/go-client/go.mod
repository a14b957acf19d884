// For module mode only: the GOPATH build this repository runs (GO111MODULE=off) ignores this
// file. The two generated packages become local modules through the replace lines below;
// README.md, "Module mode", says how (not run in this repository's CI, which has no module proxy).
module github.com/a2a-grpc/a2a-grpc/examples/go-client

go 1.19

require (
	github.com/a2a-grpc/stubs/go v0.0.0
	google.golang.org/grpc v1.33.3
	google.golang.org/lf/a2a v0.0.0
	google.golang.org/protobuf v1.28.1
)

replace (
	github.com/a2a-grpc/stubs/go => ../../gen/go/src/github.com/a2a-grpc/stubs/go
	google.golang.org/lf/a2a => ../../gen/go/src/google.golang.org/lf/a2a
)
