#include "server/config/config_watch_client.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/backoff.h"
#include "common/bearer_channel.h"
#include "common/thread_name.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/support/channel_arguments.h"

namespace turnpike {
namespace {

using config::v1::Snapshot;
using config::v1::WatchRequest;
using config::v1::WatchResponse;

std::string Errno(const std::string& what, const std::string& path) {
  return absl::StrCat(what, " ", path, ": ", std::strerror(errno));
}

absl::Status WriteAll(int fd, const std::string& data, const std::string& path) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::UnavailableError(Errno("cannot write", path));
    }
    off += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<ConfigWatchClient>> ConfigWatchClient::Create(Options options,
                                                                             ApplyFn apply,
                                                                             Clock& clock,
                                                                             absl::BitGenRef rng) {
  if (options.target.empty()) return absl::InvalidArgumentError("config watch: target is empty");
  if (options.node_id.empty()) return absl::InvalidArgumentError("config watch: node_id is empty");
  if (options.credentials == nullptr) {
    return absl::InvalidArgumentError("config watch: credentials are required (insecure or TLS)");
  }
  if (!apply) return absl::InvalidArgumentError("config watch: apply function is required");
  if (options.initial_backoff <= absl::ZeroDuration() ||
      options.max_backoff < options.initial_backoff) {
    return absl::InvalidArgumentError(
        "config watch: backoffs must satisfy 0 < initial_backoff <= max_backoff");
  }
  return std::unique_ptr<ConfigWatchClient>(
      new ConfigWatchClient(std::move(options), std::move(apply), clock, rng));
}

ConfigWatchClient::ConfigWatchClient(Options options, ApplyFn apply, Clock& clock,
                                     absl::BitGenRef rng)
    : options_(std::move(options)), apply_(std::move(apply)), clock_(clock), rng_(rng) {
  grpc::ChannelArguments args;
  // Connection attempts follow the same backoff as stream restarts.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
              static_cast<int>(absl::ToInt64Milliseconds(options_.initial_backoff)));
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
              static_cast<int>(absl::ToInt64Milliseconds(options_.max_backoff)));
  // Keep an idle watch stream alive through NATs and detect a dead control plane; the control
  // plane permits pings every 10 s.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 30 * 1000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10 * 1000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  // Snapshots can be large (many routes and callers).
  args.SetMaxReceiveMessageSize(64 * 1024 * 1024);
  channel_ = CreateChannelWithBearerToken(options_.target, options_.credentials, args,
                                          options_.node_token);
  stub_ = config::v1::ConfigDiscoveryService::NewStub(channel_);
}

ConfigWatchClient::~ConfigWatchClient() { Stop(); }

void ConfigWatchClient::Log(absl::LogSeverity severity, const std::string& message) {
  if (options_.log) options_.log(severity, message);
}

std::string ConfigWatchClient::applied_version() const {
  absl::MutexLock lock(&mu_);
  return applied_version_;
}

ConfigWatchClient::Stats ConfigWatchClient::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

absl::Status ConfigWatchClient::LoadCachedSnapshot() {
  if (options_.snapshot_path.empty()) {
    return absl::NotFoundError("no snapshot cache configured");
  }
  int fd = open(options_.snapshot_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) {
      return absl::NotFoundError(absl::StrCat("no cached snapshot at ", options_.snapshot_path));
    }
    return absl::DataLossError(Errno("cannot open", options_.snapshot_path));
  }
  std::string data;
  char buf[65536];
  while (true) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      close(fd);
      return absl::DataLossError(Errno("cannot read", options_.snapshot_path));
    }
    if (n == 0) break;
    data.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  Snapshot snapshot;
  if (!snapshot.ParseFromString(data)) {
    return absl::DataLossError(
        absl::StrCat(options_.snapshot_path, " is not a config snapshot (corrupt or truncated)"));
  }
  absl::Status s = ApplyAndSave(snapshot, /*save=*/false);
  if (!s.ok()) {
    return absl::Status(s.code(), absl::StrCat("cached snapshot ", options_.snapshot_path,
                                               " rejected: ", s.message()));
  }
  return absl::OkStatus();
}

absl::Status ConfigWatchClient::ApplyAndSave(const Snapshot& snapshot, bool save) {
  absl::MutexLock apply_lock(&apply_mu_);
  {
    absl::MutexLock lock(&mu_);
    if (has_applied_ && applied_version_ == snapshot.version()) return absl::OkStatus();
  }
  absl::Status s = apply_(snapshot);
  {
    absl::MutexLock lock(&mu_);
    if (!s.ok()) {
      stats_.nacked++;
      return s;
    }
    stats_.applied++;
    stats_.last_applied = clock_.Now();
    applied_version_ = snapshot.version();
    has_applied_ = true;
  }
  if (save && !options_.snapshot_path.empty()) {
    absl::Status saved = SaveSnapshot(snapshot);
    if (!saved.ok()) {
      {
        absl::MutexLock lock(&mu_);
        stats_.save_failures++;
      }
      Log(absl::LogSeverity::kWarning,
          absl::StrCat("config watch: cannot save last good snapshot: ", saved.message()));
    }
  }
  return absl::OkStatus();
}

absl::Status ConfigWatchClient::SaveSnapshot(const Snapshot& snapshot) {
  const std::string& path = options_.snapshot_path;
  const std::string tmp = path + ".tmp";
  std::string data;
  if (!snapshot.SerializeToString(&data)) return absl::InternalError("cannot serialize snapshot");
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return absl::UnavailableError(Errno("cannot create", tmp));
  // The file holds provider keys: 0600 even if an older tmp file had other permissions.
  absl::Status s =
      fchmod(fd, 0600) == 0 ? absl::OkStatus() : absl::UnavailableError(Errno("cannot chmod", tmp));
  if (s.ok()) s = WriteAll(fd, data, tmp);
  if (s.ok() && fsync(fd) != 0) s = absl::UnavailableError(Errno("cannot fsync", tmp));
  close(fd);
  if (s.ok() && rename(tmp.c_str(), path.c_str()) != 0) {
    s = absl::UnavailableError(Errno("cannot rename to", path));
  }
  if (!s.ok()) {
    unlink(tmp.c_str());
    return s;
  }
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  if (dir.empty()) dir = ".";
  int dfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  return absl::OkStatus();
}

void ConfigWatchClient::Start() {
  absl::MutexLock lock(&mu_);
  if (started_ || stopping_) return;
  started_ = true;
  thread_ = std::thread([this] {
    NameThisThread("tp-config-watch");
    Run();
  });
}

void ConfigWatchClient::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    if (active_context_ != nullptr) active_context_->TryCancel();
  }
  if (thread_.joinable()) thread_.join();
}

void ConfigWatchClient::Run() {
  int attempt = 0;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
    }
    bool progressed = RunStream();
    attempt = progressed ? 0 : attempt + 1;
    const absl::Duration delay = FullJitterBackoff(options_.initial_backoff, options_.max_backoff,
                                                   progressed ? 0 : attempt - 1, rng_);
    const absl::Time until = clock_.MonotonicNow() + delay;
    absl::MutexLock lock(&mu_);
    if (clock_.AwaitWithDeadline(mu_, absl::Condition(&stopping_), until)) return;
  }
}

bool ConfigWatchClient::RunStream() {
  grpc::ClientContext context;
  // Wait for the control plane instead of failing fast: the channel reconnects with backoff.
  context.set_wait_for_ready(true);
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return false;
    active_context_ = &context;
    stats_.streams++;
  }
  std::unique_ptr<grpc::ClientReaderWriter<WatchRequest, WatchResponse>> stream =
      stub_->Watch(&context);
  WatchRequest hello;
  hello.set_node_id(options_.node_id);
  hello.set_version_info(applied_version());
  hello.set_build_version(options_.build_version);
  bool progressed = false;
  if (stream->Write(hello)) {
    WatchResponse response;
    while (stream->Read(&response)) {
      progressed = true;
      Snapshot* snapshot = response.mutable_snapshot();
      if (snapshot->version() != response.version_info()) {
        snapshot->set_version(response.version_info());
      }
      absl::Status applied = ApplyAndSave(*snapshot, /*save=*/true);
      WatchRequest reply;
      reply.set_node_id(options_.node_id);
      reply.set_response_nonce(response.nonce());
      if (applied.ok()) {
        reply.set_version_info(response.version_info());
      } else {
        reply.set_version_info(applied_version());
        reply.mutable_error_detail()->set_code(static_cast<int>(applied.code()));
        reply.mutable_error_detail()->set_message(std::string(applied.message()));
        Log(absl::LogSeverity::kWarning,
            absl::StrCat("config watch: rejected config version ", response.version_info(),
                         " (keeping ", reply.version_info().empty() ? "none" : reply.version_info(),
                         "): ", applied.message()));
      }
      if (!stream->Write(reply)) break;
    }
  }
  grpc::Status status = stream->Finish();
  bool stopping;
  {
    absl::MutexLock lock(&mu_);
    active_context_ = nullptr;
    stopping = stopping_;
  }
  if (!stopping) {
    Log(absl::LogSeverity::kWarning, absl::StrCat("config watch: stream to ", options_.target,
                                                  " ended (", static_cast<int>(status.error_code()),
                                                  " ", status.error_message(), "); reconnecting"));
  }
  return progressed;
}

}  // namespace turnpike
