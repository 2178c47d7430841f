#include "server/grpc/listener_credentials.h"

#include "absl/strings/str_cat.h"
#include "common/listen_address.h"
#include "common/tls_server_credentials.h"
#include "server/telemetry/gateway_metrics.h"

namespace turnpike {

absl::StatusOr<ListenerCredentials> MakeListenerCredentials(const ListenerTlsOptions& options,
                                                            Clock& clock,
                                                            CertificateWatch::LogFn log) {
  if (options.tls_cert.empty() != options.tls_key.empty()) {
    return absl::InvalidArgumentError("--tls_cert and --tls_key go together");
  }
  if (options.tls_client_auth != "require" && options.tls_client_auth != "optional") {
    return absl::InvalidArgumentError(absl::StrCat(
        "--tls_client_auth must be require or optional, not \"", options.tls_client_auth, "\""));
  }
  ListenerCredentials out;
  if (options.tls_cert.empty()) {
    if (!options.tls_client_ca.empty()) {
      return absl::InvalidArgumentError("--tls_client_ca needs --tls_cert and --tls_key");
    }
    for (const std::string& address : {options.listen, options.metrics_listen}) {
      if (address.empty() || IsLoopbackAddress(address)) continue;
      if (!options.allow_insecure_non_loopback) {
        return absl::FailedPreconditionError(absl::StrCat(
            "refusing to listen on ", address,
            " without TLS: prompts, replies and caller keys would cross the network in clear. "
            "Use --tls_cert/--tls_key (docs/tls.md), a loopback address, or "
            "--allow_insecure_non_loopback"));
      }
      if (log) {
        log(absl::LogSeverity::kWarning,
            absl::StrCat("listening on ", address, " WITHOUT TLS (--allow_insecure_non_loopback)"));
      }
    }
    out.grpc = grpc::InsecureServerCredentials();
    return out;
  }
  ServerTlsOptions tls;
  tls.files = {options.tls_cert, options.tls_key, options.tls_client_ca};
  tls.client_certs = options.tls_client_ca.empty()          ? ClientCertMode::kNone
                     : options.tls_client_auth == "require" ? ClientCertMode::kRequire
                                                            : ClientCertMode::kOptional;
  tls.reload_interval = options.reload_interval;
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
      ReloadingServerCredentials(tls);
  if (!credentials.ok()) return credentials.status();
  out.grpc = *std::move(credentials);
  CertificateWatch::Options watch;
  watch.files = tls.files;
  watch.interval = options.reload_interval;
  watch.log = std::move(log);
  absl::StatusOr<std::unique_ptr<CertificateWatch>> started =
      CertificateWatch::Start(std::move(watch), clock);
  if (!started.ok()) return started.status();
  out.watch = *std::move(started);
  return out;
}

void AddTlsMetrics(GatewayMetrics& metrics, const CertificateWatch& watch) {
  const CertificateWatch* w = &watch;
  metrics.AddGauge("turnpike_tls_certificate_expiry_days",
                   "Days until the listeners' TLS certificate expires (negative once expired).",
                   [w] { return w->days_left(); });
  metrics.AddCounter("turnpike_tls_certificate_reloads_total",
                     "Times a changed TLS certificate was picked up without a restart.",
                     [w] { return static_cast<double>(w->reloads()); });
  metrics.AddCounter("turnpike_tls_certificate_reload_failures_total",
                     "Times changed TLS files were refused (unreadable, or a key that does not "
                     "match); the certificate in use stayed.",
                     [w] { return static_cast<double>(w->reload_failures()); });
}

}  // namespace turnpike
