#include "controlplane/watch_service.h"

#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/status.h"

namespace turnpike::controlplane {
namespace {

using config::v1::WatchRequest;
using config::v1::WatchResponse;

constexpr size_t kMaxNodeIdLength = 256;
// A gateway with more upstreams than this is misreporting (a route has at most 16 targets).
constexpr int kMaxReportedUpstreams = 10000;
// Keys one gateway may report at once (a caller holds at most a few; callers are few thousand).
constexpr int kMaxReportedKeyUses = 100000;

// One Watch stream. Lock order: SnapshotCache's lock, then mu_ (the cache calls OnSnapshot and
// OnShutdown with its lock held), then FilteredSnapshots' lock (which takes no other); so this
// class never calls the cache while holding mu_.
class WatchReactor final : public grpc::ServerBidiReactor<WatchRequest, WatchResponse>,
                           public SnapshotCache::Watcher {
 public:
  WatchReactor(grpc::CallbackServerContext* context, SnapshotCache& cache,
               DataPlaneRegistry& registry, const Authenticator& authenticator,
               FilteredSnapshots& views, uint64_t stream_id)
      : cache_(cache),
        views_(views),
        registry_(registry),
        authenticator_(authenticator),
        context_(context),
        stream_id_(stream_id),
        peer_(context->peer()) {
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the gateway closed its side, or the stream broke
      absl::MutexLock lock(&mu_);
      FinishLocked(grpc::Status::OK);
      return;
    }
    if (node_id_.empty()) {
      HandleFirstRequest();
    } else {
      HandleAckOrNack();
    }
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) {
      FinishLocked(grpc::Status(grpc::StatusCode::UNAVAILABLE, "write failed"));
      return;
    }
    if (pending_finish_.has_value()) {
      FinishLocked(*pending_finish_);
      return;
    }
    MaybeSendLocked();
  }

  void OnDone() override {
    if (subscribed_) cache_.Unsubscribe(this);
    if (connected_) registry_.Disconnected(node_id_);
    delete this;
  }

  void OnSnapshot(const VersionedSnapshot& snapshot) override {
    absl::MutexLock lock(&mu_);
    if (snapshot.version > latest_.version || latest_.snapshot == nullptr) latest_ = snapshot;
    MaybeSendLocked();
  }

  void OnShutdown() override {
    absl::MutexLock lock(&mu_);
    FinishLocked(grpc::Status(grpc::StatusCode::UNAVAILABLE, "control plane is shutting down"));
  }

 private:
  void HandleFirstRequest() {
    const std::string node_id = request_.node_id();
    if (node_id.empty() || node_id.size() > kMaxNodeIdLength) {
      absl::MutexLock lock(&mu_);
      FinishLocked(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                "node_id: the first WatchRequest must name the node (1-256 "
                                "characters)"));
      return;
    }
    absl::StatusOr<Identity> identity = authenticator_.IdentifyNode(*context_, node_id);
    if (!identity.ok()) {
      absl::MutexLock lock(&mu_);
      FinishLocked(ToGrpcStatus(identity.status()));
      return;
    }
    node_id_ = node_id;
    capabilities_ = identity->capabilities;
    registry_.Connected(node_id_, peer_, request_.build_version(), identity->Describe());
    connected_ = true;
    if (!request_.version_info().empty()) registry_.Acked(node_id_, request_.version_info());
    // Not under mu_: see the lock order above.
    std::optional<VersionedSnapshot> current = cache_.Subscribe(this);
    absl::MutexLock lock(&mu_);
    if (!current.has_value()) {
      FinishLocked(grpc::Status(grpc::StatusCode::UNAVAILABLE, "control plane is shutting down"));
      return;
    }
    subscribed_ = true;
    if (latest_.snapshot == nullptr || current->version > latest_.version) latest_ = *current;
    MaybeSendLocked();
    if (!finishing_) StartRead(&request_);
  }

  void HandleAckOrNack() {
    registry_.Seen(node_id_);
    absl::MutexLock lock(&mu_);
    if (awaiting_reply_ && request_.response_nonce() == sent_nonce_) {
      awaiting_reply_ = false;
      if (request_.has_error_detail() && request_.error_detail().code() != 0) {
        nacked_version_ = sent_version_;
        registry_.Nacked(node_id_, absl::StrCat(sent_version_), request_.error_detail().message());
      } else {
        registry_.Acked(node_id_, request_.version_info());
      }
      MaybeSendLocked();
    }  // else: a stale nonce (an answer to an older response); ignored, as in xDS
    if (!finishing_) StartRead(&request_);
  }

  void MaybeSendLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finishing_ || writing_ || awaiting_reply_ || node_id_.empty()) return;
    if (latest_.snapshot == nullptr) return;
    if (latest_.version == sent_version_) return;    // already answered
    if (latest_.version <= nacked_version_) return;  // NACK hold: wait for a newer version
    // Every push re-checks the stream's node token, so a revoked token gets nothing more (the
    // identity store takes only its own lock: no cycle with the cache's or ours).
    if (absl::StatusOr<Identity> still = authenticator_.IdentifyNode(*context_, node_id_);
        !still.ok()) {
      FinishLocked(ToGrpcStatus(still.status()));
      return;
    }
    // A node restricted to capabilities gets its view only (controlplane/snapshot_filter.h). The
    // restriction is the stream's first identity's: tokens and bindings cannot be changed, only
    // revoked, which the check above catches.
    const VersionedSnapshot view = views_.For(latest_, capabilities_);
    response_.Clear();
    response_.set_version_info(absl::StrCat(latest_.version));
    response_.set_nonce(absl::StrCat(stream_id_, "-", ++nonce_counter_));
    *response_.mutable_snapshot() = *view.snapshot;
    sent_version_ = latest_.version;
    sent_nonce_ = response_.nonce();
    awaiting_reply_ = true;
    writing_ = true;
    StartWrite(&response_);
  }

  void FinishLocked(grpc::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return;
    finishing_ = true;
    if (writing_) {  // Finish may only follow the last write's completion
      if (!pending_finish_.has_value()) pending_finish_ = std::move(status);
      return;
    }
    finished_ = true;
    Finish(std::move(status));
  }

  // Constant after construction.
  SnapshotCache& cache_;
  FilteredSnapshots& views_;
  DataPlaneRegistry& registry_;
  const Authenticator& authenticator_;
  grpc::CallbackServerContext* const context_;
  const uint64_t stream_id_;
  const std::string peer_;

  // Touched only by the read path, which has one read outstanding at a time, and by OnDone.
  WatchRequest request_;
  std::string node_id_;
  // Read under mu_ by pushes, written once before the first (the subscription orders them).
  std::vector<std::string> capabilities_;
  bool connected_ = false;
  bool subscribed_ = false;

  absl::Mutex mu_;
  WatchResponse response_ ABSL_GUARDED_BY(mu_);
  VersionedSnapshot latest_ ABSL_GUARDED_BY(mu_);
  int64_t sent_version_ ABSL_GUARDED_BY(mu_) = -1;
  std::string sent_nonce_ ABSL_GUARDED_BY(mu_);
  bool awaiting_reply_ ABSL_GUARDED_BY(mu_) = false;
  int64_t nacked_version_ ABSL_GUARDED_BY(mu_) = -1;
  uint64_t nonce_counter_ ABSL_GUARDED_BY(mu_) = 0;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finishing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<grpc::Status> pending_finish_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

grpc::ServerBidiReactor<WatchRequest, WatchResponse>* WatchService::Watch(
    grpc::CallbackServerContext* context) {
  return new WatchReactor(context, cache_, registry_, authenticator_, views_,
                          next_stream_id_.fetch_add(1));
}

grpc::Status WatchService::ReportHealth(grpc::ServerContext* context,
                                        const config::v1::ReportHealthRequest* request,
                                        config::v1::ReportHealthResponse*) {
  Violations v;
  if (request->node_id().empty() || request->node_id().size() > kMaxNodeIdLength) {
    v.Add("node_id", "must be 1-256 characters");
  }
  if (request->upstreams_size() > kMaxReportedUpstreams) {
    v.Add("upstreams", absl::StrCat("has more than ", kMaxReportedUpstreams, " entries"));
  }
  if (request->caller_key_uses_size() > kMaxReportedKeyUses) {
    v.Add("caller_key_uses", absl::StrCat("has more than ", kMaxReportedKeyUses, " entries"));
  }
  if (!v.empty()) return ToGrpcStatus(v.ToStatus());
  absl::StatusOr<Identity> identity = authenticator_.IdentifyNode(*context, request->node_id());
  if (!identity.ok()) return ToGrpcStatus(identity.status());
  absl::Status status = registry_.ReportedHealth(*request);
  if (status.ok() && record_key_uses_ && request->caller_key_uses_size() > 0) {
    std::vector<std::pair<std::string, absl::Time>> uses;
    uses.reserve(request->caller_key_uses_size());
    for (const config::v1::CallerKeyUse& use : request->caller_key_uses()) {
      uses.emplace_back(use.key_id(), absl::FromUnixSeconds(use.last_used_unix_seconds()));
    }
    status = record_key_uses_(uses);
  }
  return ToGrpcStatus(status);
}

}  // namespace turnpike::controlplane
