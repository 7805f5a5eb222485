// Package rawcodec is the gRPC codec of the native benchmark programs: messages serialized before a run
// go out as they are, and replies are dropped unread, so no call pays for protobuf.
package rawcodec

import (
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
)

// Codec marshals a *[]byte as its bytes and unmarshals nothing.
type Codec struct{}

var _ encoding.CodecV2 = Codec{}

// Marshal sends the serialized message *v as it is.
func (Codec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(*v.(*[]byte))}, nil
}

// Unmarshal drops the message: the load generator times calls and the relay answers with fixed bytes.
func (Codec) Unmarshal(mem.BufferSlice, any) error { return nil }

// Name is "proto" so the content type on the wire stays application/grpc+proto.
func (Codec) Name() string { return "proto" }
