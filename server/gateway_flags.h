// turnpike-gateway's command line: every flag (defined in gateway_flags.cc) and the component
// Options built from them, with the checks that need no I/O beyond reading the control plane's
// TLS files. Part of the turnpike-gateway binary only, never of turnpike_server_lib: components
// take Options structs and read no flag (STYLE.md, rule 5). main.cc runs the gateway with them.
//
// Thread safety: call after absl::ParseCommandLine, from main's thread.
#ifndef TURNPIKE_SERVER_GATEWAY_FLAGS_H_
#define TURNPIKE_SERVER_GATEWAY_FLAGS_H_

#include <string>

#include "absl/flags/declare.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/core/gateway_core.h"
#include "server/grpc/listener_credentials.h"

// The flags main.cc reads itself (the listeners, signals and drain).
ABSL_DECLARE_FLAG(std::string, listen);
ABSL_DECLARE_FLAG(std::string, port_file);
ABSL_DECLARE_FLAG(std::string, config);
ABSL_DECLARE_FLAG(std::string, control_plane);
ABSL_DECLARE_FLAG(absl::Duration, drain_timeout);
ABSL_DECLARE_FLAG(int, max_request_bytes);
ABSL_DECLARE_FLAG(int, threads);
ABSL_DECLARE_FLAG(std::string, http_listen);
ABSL_DECLARE_FLAG(std::string, http_port_file);
ABSL_DECLARE_FLAG(std::string, metrics_listen);
ABSL_DECLARE_FLAG(std::string, metrics_port_file);
ABSL_DECLARE_FLAG(bool, access_log);
ABSL_DECLARE_FLAG(std::string, log_level);
ABSL_DECLARE_FLAG(std::string, tls_client_ca);
ABSL_DECLARE_FLAG(bool, allow_insecure_non_loopback);

namespace turnpike {

// The listeners' TLS from the flags (server/grpc/listener_credentials.h).
ListenerTlsOptions ListenerTlsFlags();

// The core's options from the flags, for `threads` completion-queue threads; `log` is left for
// the caller to set. INVALID_ARGUMENT for a flag value out of its set or a --control_plane_* TLS
// file that cannot be read. Warns (spdlog) when the control plane will refuse this gateway.
absl::StatusOr<GatewayCore::Options> CoreOptionsFromFlags(int threads);

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_GATEWAY_FLAGS_H_
