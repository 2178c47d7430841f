// The flags of turnpike-gateway and the component Options built from them
// (server/gateway_flags.h).
#include "server/gateway_flags.h"

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <utility>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/security/credentials.h"
#include "spdlog/spdlog.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:50051", "Address to serve on: host:port or unix:/path");
ABSL_FLAG(std::string, port_file, "", "If set, write the bound port here once listening");
ABSL_FLAG(std::string, config, "", "Config file: the JSON form of turnpike.config.v1.Snapshot");
ABSL_FLAG(
    std::string, control_plane, "",
    "Control plane address (host:port); replaces --config: config arrives on the watch stream");
ABSL_FLAG(std::string, node_id, "",
          "This gateway's id on the watch stream (default: hostname-pid)");
ABSL_FLAG(std::string, snapshot_cache, "var/gateway-snapshot.pb",
          "With --control_plane: where the last good snapshot is kept (mode 0600) and started from "
          "when the control plane is down; empty disables it");
ABSL_FLAG(std::string, control_plane_ca, "", "PEM CA bundle: use TLS to the control plane");
ABSL_FLAG(std::string, control_plane_cert, "", "PEM client certificate for mutual TLS");
ABSL_FLAG(std::string, control_plane_key, "", "PEM client private key for mutual TLS");
ABSL_FLAG(std::string, node_token_file, "",
          "With --control_plane: file holding this gateway's node token (tpn_..., issued by "
          "AdminService/CreateNodeToken for its --node_id); sent on every call to the control "
          "plane, which refuses calls without it");
ABSL_FLAG(absl::Duration, health_report_interval, absl::Seconds(5),
          "With --control_plane: how often upstream health (circuit breakers) is reported to it");
ABSL_FLAG(absl::Duration, drain_timeout, absl::Seconds(10),
          "On SIGTERM/SIGINT, how long streams in flight may take to finish");
ABSL_FLAG(int, max_request_bytes, 4 << 20, "Largest request message accepted");
ABSL_FLAG(int, threads, 0, "gRPC completion-queue threads (0 = half the cores, at least one)");
ABSL_FLAG(int, upstream_loops, 0,
          "Upstream HTTP event loops (0 = one per completion-queue thread)");
ABSL_FLAG(std::string, http_listen, "",
          "Address (host:port) of the OpenAI-compatible HTTP front door (/v1/chat/completions, "
          "/v1/embeddings, /v1/models; docs/openai-compatible.md); empty disables it");
ABSL_FLAG(std::string, http_port_file, "", "If set, write the HTTP front door's port here");
ABSL_FLAG(std::string, metrics_listen, "127.0.0.1:9464",
          "Address (host:port) of the Prometheus /metrics endpoint; empty disables it");
ABSL_FLAG(std::string, metrics_port_file, "", "If set, write the /metrics port here");
ABSL_FLAG(bool, access_log, true, "Log one line per request");
ABSL_FLAG(std::string, request_log, "off",
          "Request log, one JSON line per request: stdout, a file path, or off "
          "(docs/request-log.md)");
ABSL_FLAG(int, request_log_max_mb, 100, "Rotate the request log file at this size, MiB (0: never)");
ABSL_FLAG(int, request_log_keep, 5, "Rotated request log files kept (PATH.1 ... PATH.N)");
ABSL_FLAG(int, request_log_excerpt_bytes, 2048,
          "CONTENT_POLICY_REDACTED: most bytes of request text, and of reply text, per request-log "
          "line and per audit entry");
ABSL_FLAG(std::string, usage_spool_dir, "var/usage-spool",
          "With --control_plane: where usage records wait (fsynced) until the control plane has "
          "them; empty turns metering off");
ABSL_FLAG(int, usage_spool_max_mb, 256, "Bound of the usage spool (disk and queue), MiB");
ABSL_FLAG(std::string, usage_spool_full, "drop",
          "When the usage spool is full: drop (keep serving, count the records not kept) or "
          "reject (refuse new requests with UNAVAILABLE)");
ABSL_FLAG(absl::Duration, usage_commit_interval, absl::Milliseconds(20),
          "Longest a finished request's usage record waits in memory before it is fsynced");
ABSL_FLAG(std::string, log_level, "info", "trace, debug, info, warn, error");
// Callers over TLS (docs/tls.md): read only by ListenerTlsFlags() below.
ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate chain of the gRPC listener and /metrics (enables TLS 1.2+); reloaded "
          "when the file changes");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM CA bundle: callers present a certificate it signed (mutual TLS); a caller whose "
          "certificate names one of its cert_sans is that caller");
ABSL_FLAG(std::string, tls_client_auth, "require",
          "With --tls_client_ca: require (no certificate, no connection) or optional (callers "
          "without one connect and use their key)");
ABSL_FLAG(absl::Duration, tls_reload_interval, absl::Seconds(60),
          "How often the TLS files are checked for a new certificate");
ABSL_FLAG(bool, allow_insecure_non_loopback, false,
          "Allow listening without TLS on a non-loopback address (logged as a warning)");

namespace turnpike {
namespace {

std::string ReadFileOrDie(const std::string& path, bool* ok) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *ok = false;
    return "";
  }
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// This gateway's node id: --node_id, or host-pid.
std::string NodeId() {
  if (!absl::GetFlag(FLAGS_node_id).empty()) return absl::GetFlag(FLAGS_node_id);
  char host[256] = {0};
  gethostname(host, sizeof(host) - 1);
  return absl::StrCat(host, "-", getpid());
}

// The control plane's channel credentials: TLS with --control_plane_ca, else plaintext.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ControlPlaneCredentials() {
  if (absl::GetFlag(FLAGS_control_plane_ca).empty()) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions tls;
  bool ok = true;
  tls.pem_root_certs = ReadFileOrDie(absl::GetFlag(FLAGS_control_plane_ca), &ok);
  if (!absl::GetFlag(FLAGS_control_plane_cert).empty()) {
    tls.pem_cert_chain = ReadFileOrDie(absl::GetFlag(FLAGS_control_plane_cert), &ok);
    tls.pem_private_key = ReadFileOrDie(absl::GetFlag(FLAGS_control_plane_key), &ok);
  }
  if (!ok) return absl::InvalidArgumentError("cannot read a --control_plane_* TLS file");
  return grpc::SslCredentials(tls);
}

}  // namespace

// The listeners' TLS from the flags (server/grpc/listener_credentials.h).
ListenerTlsOptions ListenerTlsFlags() {
  ListenerTlsOptions tls;
  tls.listen = absl::GetFlag(FLAGS_listen);
  tls.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  tls.tls_cert = absl::GetFlag(FLAGS_tls_cert);
  tls.tls_key = absl::GetFlag(FLAGS_tls_key);
  tls.tls_client_ca = absl::GetFlag(FLAGS_tls_client_ca);
  tls.tls_client_auth = absl::GetFlag(FLAGS_tls_client_auth);
  tls.allow_insecure_non_loopback = absl::GetFlag(FLAGS_allow_insecure_non_loopback);
  tls.reload_interval = absl::GetFlag(FLAGS_tls_reload_interval);
  return tls;
}

absl::StatusOr<GatewayCore::Options> CoreOptionsFromFlags(int threads) {
  GatewayCore::Options core;
  core.config_file = absl::GetFlag(FLAGS_config);
  core.control_plane = absl::GetFlag(FLAGS_control_plane);
  core.node_id = NodeId();
  core.snapshot_cache = absl::GetFlag(FLAGS_snapshot_cache);
  core.node_token_file = absl::GetFlag(FLAGS_node_token_file);
  if (!core.control_plane.empty() && core.node_token_file.empty()) {
    spdlog::warn(
        "no --node_token_file: the control plane will refuse this gateway's watch "
        "stream, health reports and usage (docs/security.md)");
  }
  if (!core.control_plane.empty()) {
    absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
        ControlPlaneCredentials();
    if (!credentials.ok()) return credentials.status();
    core.control_plane_credentials = *std::move(credentials);
  }
  core.build_version = "turnpike-gateway";
  core.health_report_interval = absl::GetFlag(FLAGS_health_report_interval);
  core.usage_spool_dir = absl::GetFlag(FLAGS_usage_spool_dir);
  core.usage_spool_max_bytes = static_cast<size_t>(absl::GetFlag(FLAGS_usage_spool_max_mb)) << 20;
  core.usage_commit_interval = absl::GetFlag(FLAGS_usage_commit_interval);
  const std::string full_policy = absl::GetFlag(FLAGS_usage_spool_full);
  if (full_policy != "drop" && full_policy != "reject") {
    return absl::InvalidArgumentError(
        absl::StrCat("--usage_spool_full must be drop or reject, not \"", full_policy, "\""));
  }
  core.usage_reject_when_full = full_policy == "reject";
  if (const std::string where = absl::GetFlag(FLAGS_request_log); where != "off") {
    if (where.empty())
      return absl::InvalidArgumentError("--request_log: needs stdout, a path or off");
    core.request_log = where;
  }
  core.request_log_max_bytes = int64_t{absl::GetFlag(FLAGS_request_log_max_mb)} << 20;
  core.request_log_keep = absl::GetFlag(FLAGS_request_log_keep);
  core.excerpt_max_bytes =
      static_cast<size_t>(std::max(0, absl::GetFlag(FLAGS_request_log_excerpt_bytes)));
  core.upstream_loops =
      absl::GetFlag(FLAGS_upstream_loops) > 0 ? absl::GetFlag(FLAGS_upstream_loops) : threads;
  core.access_log = absl::GetFlag(FLAGS_access_log);
  return core;
}

}  // namespace turnpike
