// Package proto holds the gRPC protocol of gitmon plugins, generated from
// runner.proto. Regenerate it with `make proto`, which runs go generate
// here; it needs protoc, protoc-gen-go and protoc-gen-go-grpc on PATH:
//
//	apt-get install -y protobuf-compiler
//	go install google.golang.org/protobuf/cmd/protoc-gen-go@latest
//	go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@latest
package proto

//go:generate protoc --proto_path=. --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative runner.proto
