// Client side of the control plane's authentication (docs/security.md): a channel whose every call
// carries `authorization: Bearer <token>`, for the gateway's node token (watch stream, health
// reports, usage shipping, budget leases: they all share the watch client's channel) and for
// tests' admin clients. The header is added by a client interceptor, not by gRPC call
// credentials: gRPC refuses to send call credentials on an insecure channel, and the gateway's
// default link to a loopback control plane is plaintext; an interceptor adds the same header on
// any channel, TLS or not. For a single call on another channel, AddBearerToken() decorates its
// ClientContext. Stateless functions; the channels are thread-safe.
#ifndef TURNPIKE_COMMON_BEARER_CHANNEL_H_
#define TURNPIKE_COMMON_BEARER_CHANNEL_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"

namespace turnpike {

// A channel to `target`; with a non-empty `token`, every call on it sends the bearer header.
std::shared_ptr<grpc::Channel> CreateChannelWithBearerToken(
    const std::string& target, const std::shared_ptr<grpc::ChannelCredentials>& credentials,
    const grpc::ChannelArguments& args, const std::string& token);

// Adds the bearer header to one call.
void AddBearerToken(grpc::ClientContext& context, const std::string& token);

// The token in `path`: its content with surrounding whitespace removed. NOT_FOUND if the file
// cannot be read, INVALID_ARGUMENT if it is empty. Errors name the file, never its content.
absl::StatusOr<std::string> ReadTokenFile(const std::string& path);

}  // namespace turnpike

#endif  // TURNPIKE_COMMON_BEARER_CHANNEL_H_
