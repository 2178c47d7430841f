#include "controlplane/budget/budget_service.h"

#include <spdlog/spdlog.h>

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/status.h"
#include "controlplane/validation.h"

namespace turnpike::controlplane {
namespace {

namespace b = ::turnpike::budget::v1;

constexpr int kMaxWatchedNames = 1000;

grpc::Status Answer(const char* method, const absl::Status& s) {
  if (!s.ok() &&
      (s.code() == absl::StatusCode::kInternal || s.code() == absl::StatusCode::kDataLoss ||
       s.code() == absl::StatusCode::kUnavailable ||
       s.code() == absl::StatusCode::kResourceExhausted)) {
    spdlog::error("budget: {} failed: {}", method, s.ToString());
  }
  return ToGrpcStatus(s);
}

// One WatchBudgets stream. Lock order: the hub's lock, then mu_ (the hub calls OnBudgets and
// OnShutdown with its lock held), so this class never calls the hub while holding mu_.
class WatchBudgetsReactor final : public grpc::ServerWriteReactor<b::WatchBudgetsResponse>,
                                  public BudgetWatchHub::Subscriber {
 public:
  WatchBudgetsReactor(BudgetWatchHub& hub, const b::WatchBudgetsRequest& request) : hub_(hub) {
    Violations v;
    if (request.names_size() > kMaxWatchedNames) {
      v.Add("names", absl::StrCat("has more than ", kMaxWatchedNames, " entries"));
    }
    for (int i = 0; i < request.names_size() && i < kMaxWatchedNames; ++i) {
      ValidateName(request.names(i), absl::StrCat("names[", i, "]"), v);
    }
    if (!v.empty()) {
      absl::MutexLock lock(&mu_);
      FinishLocked(ToGrpcStatus(v.ToStatus()));
      return;
    }
    subscribed_ = hub_.Subscribe(
        this, std::vector<std::string>(request.names().begin(), request.names().end()));
    if (!subscribed_) {
      absl::MutexLock lock(&mu_);
      FinishLocked(grpc::Status(grpc::StatusCode::UNAVAILABLE, "control plane is shutting down"));
    }
  }

  void OnBudgets(std::vector<b::BudgetStatus> budgets, std::vector<std::string> removed) override {
    absl::MutexLock lock(&mu_);
    first_ready_ = true;
    for (b::BudgetStatus& s : budgets) {
      pending_removed_.erase(s.name());
      pending_[s.name()] = std::move(s);
    }
    for (std::string& name : removed) {
      pending_.erase(name);
      pending_removed_.insert(std::move(name));
    }
    MaybeWriteLocked();
  }

  void OnShutdown() override {
    absl::MutexLock lock(&mu_);
    FinishLocked(grpc::Status(grpc::StatusCode::UNAVAILABLE, "control plane is shutting down"));
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (pending_finish_.has_value()) {
      Finish(*std::move(pending_finish_));
      pending_finish_.reset();
      return;
    }
    if (!ok) {
      FinishLocked(grpc::Status(grpc::StatusCode::UNAVAILABLE, "write failed"));
      return;
    }
    MaybeWriteLocked();
  }

  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    FinishLocked(grpc::Status(grpc::StatusCode::CANCELLED, "the client cancelled the watch"));
  }

  void OnDone() override {
    if (subscribed_) hub_.Unsubscribe(this);
    delete this;
  }

 private:
  void MaybeWriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finishing_ || writing_ || !first_ready_) return;
    // The first message goes out even when no budget is watched yet: it says "nothing so far".
    if (sent_first_ && pending_.empty() && pending_removed_.empty()) return;
    response_.Clear();
    for (auto& [name, state] : pending_) *response_.add_budgets() = std::move(state);
    for (const std::string& name : pending_removed_) response_.add_removed(name);
    pending_.clear();
    pending_removed_.clear();
    sent_first_ = true;
    writing_ = true;
    StartWrite(&response_);
  }

  void FinishLocked(grpc::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finishing_) return;
    finishing_ = true;
    if (writing_) {  // Finish may only follow the last write's completion
      pending_finish_ = std::move(status);
      return;
    }
    Finish(std::move(status));
  }

  // Constant after construction.
  BudgetWatchHub& hub_;
  bool subscribed_ = false;  // set in the constructor, read in OnDone

  absl::Mutex mu_;
  b::WatchBudgetsResponse response_ ABSL_GUARDED_BY(mu_);
  // By name, so a message lists budgets in name order and a budget at most once.
  std::map<std::string, b::BudgetStatus> pending_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> pending_removed_ ABSL_GUARDED_BY(mu_);
  bool first_ready_ ABSL_GUARDED_BY(mu_) = false;
  bool sent_first_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finishing_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<grpc::Status> pending_finish_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

grpc::Status BudgetServiceImpl::GetBudget(grpc::ServerContext*, const b::GetBudgetRequest* request,
                                          b::GetBudgetResponse* response) {
  Violations v;
  ValidateName(request->name(), "name", v);
  if (!v.empty()) return ToGrpcStatus(v.ToStatus());
  absl::StatusOr<b::BudgetStatus> s = ledger_.GetBudget(request->name());
  if (!s.ok()) return Answer("GetBudget", s.status());
  *response->mutable_budget() = *std::move(s);
  return grpc::Status::OK;
}

grpc::Status BudgetServiceImpl::ListBudgets(grpc::ServerContext*,
                                            const b::ListBudgetsRequest* request,
                                            b::ListBudgetsResponse* response) {
  absl::StatusOr<LeaseLedger::Page> page =
      ledger_.ListBudgets(request->page_size(), request->page_token());
  if (!page.ok()) return Answer("ListBudgets", page.status());
  for (b::BudgetStatus& s : page->budgets) *response->add_budgets() = std::move(s);
  response->set_next_page_token(std::move(page->next_page_token));
  return grpc::Status::OK;
}

grpc::Status BudgetServiceImpl::AcquireLease(grpc::ServerContext* context,
                                             const b::AcquireLeaseRequest* request,
                                             b::AcquireLeaseResponse* response) {
  // One gateway cannot lease, renew or report as another, nor lease outside its capabilities.
  absl::StatusOr<Identity> node = authenticator_.IdentifyNode(*context, request->node_id());
  if (!node.ok()) return ToGrpcStatus(node.status());
  absl::StatusOr<b::AcquireLeaseResponse> out = ledger_.Acquire(*request, node->capabilities);
  if (!out.ok()) return Answer("AcquireLease", out.status());
  *response = *std::move(out);
  return grpc::Status::OK;
}

grpc::Status BudgetServiceImpl::ReleaseLease(grpc::ServerContext* context,
                                             const b::ReleaseLeaseRequest* request,
                                             b::ReleaseLeaseResponse* response) {
  if (absl::Status s = authenticator_.IdentifyNode(*context, request->node_id()).status();
      !s.ok()) {
    return ToGrpcStatus(s);
  }
  absl::StatusOr<b::ReleaseLeaseResponse> out = ledger_.Release(*request);
  if (!out.ok()) return Answer("ReleaseLease", out.status());
  *response = *std::move(out);
  return grpc::Status::OK;
}

grpc::ServerWriteReactor<b::WatchBudgetsResponse>* BudgetServiceImpl::WatchBudgets(
    grpc::CallbackServerContext*, const b::WatchBudgetsRequest* request) {
  return new WatchBudgetsReactor(hub_, *request);
}

}  // namespace turnpike::controlplane
