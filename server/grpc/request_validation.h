// Parsing and validation of data-plane requests, before anything is routed or reserved. Requests
// arrive as raw bytes so that a malformed message, or invalid UTF-8 in a string field, gets an
// INVALID_ARGUMENT naming the field instead of the library's generic deserialization failure.
// Every error is INVALID_ARGUMENT with a google.rpc.BadRequest detail (parsing in
// request_validation_parse.cc, the checks in request_validation.cc). Stateless; thread-safe.
#ifndef TURNPIKE_SERVER_GRPC_REQUEST_VALIDATION_H_
#define TURNPIKE_SERVER_GRPC_REQUEST_VALIDATION_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "grpcpp/support/byte_buffer.h"
#include "turnpike/v1/classification.pb.h"
#include "turnpike/v1/completion.pb.h"
#include "turnpike/v1/embedding.pb.h"

namespace turnpike {

// Parses a StreamCompletionRequest or CompleteRequest (they are wire-identical).
absl::Status ParseCompletionRequest(const grpc::ByteBuffer& buffer,
                                    v1::StreamCompletionRequest* request);
absl::Status ValidateCompletionRequest(const v1::StreamCompletionRequest& request);

// Parses a ClassifyRequest (checked by ValidateClassifyLabels, server/exchange/classification.h).
absl::Status ParseClassifyRequest(const grpc::ByteBuffer& buffer, v1::ClassifyRequest* request);

absl::Status ParseEmbedRequest(const grpc::ByteBuffer& buffer, v1::EmbedRequest* request);
absl::Status ValidateEmbedRequest(const v1::EmbedRequest& request);

// A new random request id: "req_" and 32 hex characters.
std::string NewRequestId();

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_GRPC_REQUEST_VALIDATION_H_
