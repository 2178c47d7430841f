#include "common/tls_server_credentials.h"

#include <algorithm>

#include "grpcpp/security/tls_certificate_provider.h"
#include "grpcpp/security/tls_credentials_options.h"

namespace turnpike {

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ReloadingServerCredentials(
    const ServerTlsOptions& options) {
  const bool has_ca = !options.files.client_ca_path.empty();
  if (has_ca != (options.client_certs != ClientCertMode::kNone)) {
    return absl::InvalidArgumentError(
        "a client CA bundle goes with asking for client certificates, and only with it");
  }
  // gRPC's watcher would only log a bad file and then fail every handshake: refuse it here.
  absl::StatusOr<TlsMaterial> checked = LoadTlsMaterial(options.files);
  if (!checked.ok()) return checked.status();
  const auto seconds = static_cast<unsigned int>(
      std::max<int64_t>(1, absl::ToInt64Seconds(options.reload_interval)));
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      options.files.key_path, options.files.cert_path, options.files.client_ca_path, seconds);
  grpc::experimental::TlsServerCredentialsOptions tls(provider);
  tls.watch_identity_key_cert_pairs();
  if (has_ca) {
    tls.watch_root_certs();
    tls.set_cert_request_type(options.client_certs == ClientCertMode::kRequire
                                  ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                                  : GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
  } else {
    tls.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  }
  std::shared_ptr<grpc::ServerCredentials> credentials =
      grpc::experimental::TlsServerCredentials(tls);
  if (credentials == nullptr) return absl::InternalError("gRPC refused the TLS server options");
  return credentials;
}

}  // namespace turnpike
