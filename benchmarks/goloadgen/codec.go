package main

import (
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
)

// rawCodec sends requests that were serialized before the run as they are, and drops the replies
// unread: the load generator times calls, it does not look at answers, so no call pays for protobuf.
type rawCodec struct{}

var _ encoding.CodecV2 = rawCodec{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(*v.(*[]byte))}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	return nil
}

// Name is "proto" so the content type on the wire stays application/grpc+proto.
func (rawCodec) Name() string { return "proto" }
