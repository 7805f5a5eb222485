package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	_ "rtscore/benchmarks/goloadgen/rtscorepb" // registers rtscore.v1's services and messages
)

// maxRequestBytes bounds one request read from the file, so a corrupt length cannot exhaust memory.
const maxRequestBytes = 256 << 20

// readRequests reads length-delimited messages (a uvarint byte count before each one) from path.
func readRequests(path string) ([][]byte, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	reader := bufio.NewReader(file)
	var requests [][]byte
	for {
		size, err := binary.ReadUvarint(reader)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: request %d: bad length prefix: %w", path, len(requests), err)
		}
		if size > maxRequestBytes {
			return nil, fmt.Errorf("%s: request %d claims %d bytes", path, len(requests), size)
		}
		message := make([]byte, size)
		if _, err := io.ReadFull(reader, message); err != nil {
			return nil, fmt.Errorf("%s: request %d is cut short: %w", path, len(requests), err)
		}
		requests = append(requests, message)
	}
	if len(requests) == 0 {
		return nil, fmt.Errorf("%s: no requests in the file", path)
	}
	return requests, nil
}

// requestType is the input message of a method of rtscore.v1 ("/rtscore.v1.Scorer/Score"), or nil
// for a method the generated stubs do not describe.
func requestType(method string) protoreflect.MessageType {
	service, name, ok := strings.Cut(strings.TrimPrefix(method, "/"), "/")
	if !ok {
		return nil
	}
	found, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(service))
	if err != nil {
		return nil
	}
	descriptor, ok := found.(protoreflect.ServiceDescriptor)
	if !ok {
		return nil
	}
	rpc := descriptor.Methods().ByName(protoreflect.Name(name))
	if rpc == nil {
		return nil
	}
	kind, err := protoregistry.GlobalTypes.FindMessageByName(rpc.Input().FullName())
	if err != nil {
		return nil
	}
	return kind
}

// checkRequests parses every request as the method's input message when the stubs know the method, so
// a file of requests meant for another method is refused before the run instead of failing every call.
func checkRequests(method string, requests [][]byte) error {
	kind := requestType(method)
	if kind == nil {
		return nil
	}
	for i, raw := range requests {
		message := kind.New()
		if err := proto.Unmarshal(raw, message.Interface()); err != nil {
			return fmt.Errorf("request %d is not a valid %s (the input of %s): %w", i, kind.Descriptor().FullName(), method, err)
		}
		if len(message.GetUnknown()) > 0 {
			return fmt.Errorf("request %d has fields that %s (the input of %s) does not", i, kind.Descriptor().FullName(), method)
		}
	}
	return nil
}
