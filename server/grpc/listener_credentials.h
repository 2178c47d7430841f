// How turnpike-gateway's listeners are secured (docs/tls.md): the gRPC listener's credentials,
// and the certificate watch that /metrics serves HTTPS from and the expiry gauge reads. With
// --tls_cert/--tls_key the gRPC listener is TLS 1.2+ with certificates reloaded from disk, and
// with --tls_client_ca it asks callers for a certificate (required or optional). Without TLS a
// listener on a non-loopback address is refused unless allowed explicitly, then warned about.
// MakeListenerCredentials is called once from main; thread-safe.
#ifndef TURNPIKE_SERVER_GRPC_LISTENER_CREDENTIALS_H_
#define TURNPIKE_SERVER_GRPC_LISTENER_CREDENTIALS_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/certificate_watch.h"
#include "common/clock.h"
#include "grpcpp/security/server_credentials.h"

namespace turnpike {

class GatewayMetrics;

struct ListenerTlsOptions {
  std::string listen;          // the gRPC listener
  std::string metrics_listen;  // the /metrics listener; empty when disabled
  std::string tls_cert;
  std::string tls_key;
  std::string tls_client_ca;
  std::string tls_client_auth = "require";  // or "optional"
  bool allow_insecure_non_loopback = false;
  absl::Duration reload_interval = absl::Seconds(60);
};

struct ListenerCredentials {
  std::shared_ptr<grpc::ServerCredentials> grpc;
  // The certificate in use and its expiry; null without TLS.
  std::unique_ptr<CertificateWatch> watch;
};

// Errors name the flag or the file and the problem (INVALID_ARGUMENT for flags that do not go
// together, FAILED_PRECONDITION for files and for plaintext off loopback).
absl::StatusOr<ListenerCredentials> MakeListenerCredentials(const ListenerTlsOptions& options,
                                                            Clock& clock,
                                                            CertificateWatch::LogFn log);

// The TLS series of /metrics: days until the certificate expires, reloads and refused rewrites.
void AddTlsMetrics(GatewayMetrics& metrics, const CertificateWatch& watch);

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_GRPC_LISTENER_CREDENTIALS_H_
