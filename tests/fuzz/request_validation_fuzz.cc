// libFuzzer target: data-plane request parsing and validation (server/grpc/request_validation.h)
// on arbitrary request bytes, exactly as they arrive from gRPC: in a grpc::ByteBuffer, split into
// two slices at a point taken from the input so the flattening path is exercised too. The first
// byte picks the method (completion or embeddings).
#include <cstddef>
#include <cstdint>
#include <string>

#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/slice.h>

#include "server/grpc/request_validation.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool embed = (data[0] & 1) != 0;
  const std::string bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  const size_t split = bytes.empty() ? 0 : (data[0] >> 1) % (bytes.size() + 1);
  grpc::Slice slices[2] = {grpc::Slice(bytes.data(), split),
                           grpc::Slice(bytes.data() + split, bytes.size() - split)};
  const grpc::ByteBuffer buffer(slices, 2);
  if (embed) {
    turnpike::v1::EmbedRequest request;
    if (turnpike::ParseEmbedRequest(buffer, &request).ok()) {
      (void)turnpike::ValidateEmbedRequest(request);
    }
  } else {
    turnpike::v1::StreamCompletionRequest request;
    if (turnpike::ParseCompletionRequest(buffer, &request).ok()) {
      (void)turnpike::ValidateCompletionRequest(request);
    }
  }
  return 0;
}
