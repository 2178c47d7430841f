// gRPC server credentials that follow their certificate files: gRPC's
// FileWatcherCertificateProvider re-reads the key, the certificate chain and the client CA bundle
// every `reload_interval`, so a renewed certificate (cert-manager, a renewal job) is used by new
// connections while connections in flight keep theirs; a rewrite whose key does not match is
// ignored and the old pair stays. TLS 1.2 is the oldest version offered and 1.3 the preferred
// (gRPC's defaults, pinned by a test). The files are checked first (LoadTlsMaterial), so a bad file
// fails here, naming it. Used by both services. Thread-safe (a pure function).
#ifndef TURNPIKE_COMMON_TLS_SERVER_CREDENTIALS_H_
#define TURNPIKE_COMMON_TLS_SERVER_CREDENTIALS_H_

#include <memory>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/tls_files.h"
#include "grpcpp/security/server_credentials.h"

namespace turnpike {

// Whether clients must present a certificate signed by the client CA.
enum class ClientCertMode {
  kNone,      // no client certificate asked for (no client CA)
  kOptional,  // asked for, verified when presented; a client without one still connects
  kRequire,   // a client without a valid certificate fails the handshake
};

struct ServerTlsOptions {
  TlsFileSet files;
  // kNone when files.client_ca_path is empty, else kOptional or kRequire.
  ClientCertMode client_certs = ClientCertMode::kNone;
  // How often gRPC checks the files (whole seconds, at least one).
  absl::Duration reload_interval = absl::Seconds(60);
};

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ReloadingServerCredentials(
    const ServerTlsOptions& options);

}  // namespace turnpike

#endif  // TURNPIKE_COMMON_TLS_SERVER_CREDENTIALS_H_
