// The audit trail end to end, with real processes: the fake provider, turnpike-control (signing
// checkpoints every second) and a gateway watching it. Every request the callers were answered
// for has exactly one chained entry naming the provider's host, and the chain verifies, even
// after the control plane was killed with SIGKILL in the middle of ingesting batches.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/integration/control_plane_clients.h"
#include "tests/integration/harness.h"
#include "turnpike/audit/v1/audit.grpc.pb.h"

namespace turnpike::testing {
namespace {

using std::chrono::seconds;
namespace au = ::turnpike::audit::v1;

// Unary completions with unique request ids until stopped; keeps the ids answered OK.
class Load {
 public:
  Load(const std::string& address, int threads) : client_(address) {
    for (int t = 0; t < threads; ++t) {
      threads_.emplace_back([this, t] {
        for (int n = 0; !stop_; ++n) {
          grpc::ClientContext ctx;
          SetDeadline(ctx, seconds(5));
          auto request = DemoRequest<v1::CompleteRequest>("audited");
          request.set_request_id(absl::StrCat("audit-", t, "-", n));
          v1::CompleteResponse response;
          if (!client_.completion().Complete(&ctx, request, &response).ok()) continue;
          std::lock_guard<std::mutex> lock(mu_);
          done_.insert(request.request_id());
        }
      });
    }
  }
  ~Load() { Stop(); }
  void Stop() {
    stop_ = true;
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  std::set<std::string> done() {
    std::lock_guard<std::mutex> lock(mu_);
    return done_;
  }

 private:
  GatewayClient client_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::set<std::string> done_;
  std::vector<std::thread> threads_;
};

class AuditE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fake_ = std::make_unique<FakeProvider>(dir_);
    ASSERT_GT(fake_->port(), 0) << fake_->process().Log();
    StartControlPlane(0);
    ASSERT_TRUE(Admin(control_->address(), control_->admin_token())
                    .SeedDemo(fake_->port(), "model-0")
                    .ok());
    WatchSource source;
    source.control_plane = control_->address();
    source.node_id = "audit-gw";
    source.node_token_file = dir_.File("audit-gw.token");
    ASSERT_TRUE(Admin(control_->address(), control_->admin_token())
                    .WriteNodeToken("audit-gw", source.node_token_file)
                    .ok());
    gateway_ = std::make_unique<Gateway>(dir_, source);
    ASSERT_GT(gateway_->port(), 0) << gateway_->process().Log();
    GatewayClient client(gateway_->address());
    ASSERT_TRUE(WaitFor([&] { return client.Serves("model-0"); }, seconds(15)))
        << gateway_->process().Log();
  }

  void StartControlPlane(int port) {
    control_ = std::make_unique<ControlPlane>(dir_, port);
    ASSERT_GT(control_->port(), 0) << control_->process().Log();
    audit_ =
        au::AuditService::NewStub(ControlChannel(control_->address(), control_->admin_token()));
  }

  // Every entry of the chain (all pages); empty if the control plane does not answer.
  std::vector<au::AuditEntry> Entries() {
    std::vector<au::AuditEntry> out;
    au::QueryAuditRequest request;
    request.set_page_size(1000);
    do {
      grpc::ClientContext ctx;
      SetDeadline(ctx);
      au::QueryAuditResponse response;
      if (!audit_->QueryAudit(&ctx, request, &response).ok()) return {};
      out.insert(out.end(), response.entries().begin(), response.entries().end());
      request.set_page_token(response.next_page_token());
    } while (!request.page_token().empty());
    return out;
  }

  size_t Requests(const std::vector<au::AuditEntry>& entries) {
    size_t n = 0;
    for (const auto& e : entries) n += e.entry().has_request();
    return n;
  }

  TempDir dir_;
  std::unique_ptr<FakeProvider> fake_;
  std::unique_ptr<ControlPlane> control_;
  std::unique_ptr<Gateway> gateway_;
  std::unique_ptr<au::AuditService::Stub> audit_;
};

TEST_F(AuditE2eTest, EveryRequestIsChainedOnceAndTheChainVerifiesAfterAKill9DuringIngest) {
  Load load(gateway_->address(), 3);
  // Ingest is under way (and a checkpoint signed): batches keep arriving while the control
  // plane is killed.
  ASSERT_TRUE(WaitFor(
      [&] {
        grpc::ClientContext ctx;
        SetDeadline(ctx);
        au::GetCheckpointResponse checkpoint;
        return Requests(Entries()) >= 100 &&
               audit_->GetCheckpoint(&ctx, au::GetCheckpointRequest(), &checkpoint).ok() &&
               checkpoint.has_checkpoint();
      },
      seconds(30)));
  const int port = control_->port();
  audit_.reset();
  control_->process().Signal(SIGKILL);
  ASSERT_TRUE(control_->process().Wait(seconds(10)).has_value());
  const size_t before = load.done().size();
  ASSERT_TRUE(WaitFor([&] { return load.done().size() >= before + 200; }, seconds(60)));
  StartControlPlane(port);
  ASSERT_TRUE(WaitFor([&] { return load.done().size() >= before + 400; }, seconds(60)));
  load.Stop();
  const std::set<std::string> told = load.done();

  std::vector<au::AuditEntry> entries;
  std::map<std::string, int> seen;
  ASSERT_TRUE(WaitFor(
      [&] {
        entries = Entries();
        seen.clear();
        for (const auto& e : entries) {
          if (e.entry().has_request()) ++seen[e.entry().request().request_id()];
        }
        for (const std::string& id : told) {
          if (!seen.contains(id)) return false;
        }
        return true;
      },
      seconds(60)))
      << "of " << told.size() << " requests answered, " << seen.size() << " chained";
  size_t admin_changes = 0;
  for (const auto& e : entries) {
    if (e.entry().has_admin_change()) {
      ++admin_changes;
      continue;
    }
    EXPECT_EQ(seen[e.entry().request().request_id()], 1) << e.entry().request().request_id();
    // Requests refused before any attempt (the readiness probes) name no provider nor host.
    EXPECT_EQ(
        e.entry().request().audit().provider_host(),
        e.entry().request().provider().empty() ? "" : absl::StrCat("127.0.0.1:", fake_->port()))
        << e.entry().request().request_id();
    EXPECT_EQ(e.entry().request().audit().content_policy(), "NONE");
  }
  EXPECT_GT(admin_changes, 0u);  // the seeding's changes are in the same chain

  // Wait for a checkpoint over the whole chain, then verify it all.
  au::VerifyAuditResponse verdict;
  ASSERT_TRUE(WaitFor(
      [&] {
        grpc::ClientContext ctx;
        SetDeadline(ctx);
        verdict.Clear();
        return audit_->VerifyAudit(&ctx, au::VerifyAuditRequest(), &verdict).ok() &&
               verdict.latest_checkpoint().size() == verdict.size();
      },
      seconds(10)));
  EXPECT_TRUE(verdict.intact()) << verdict.problem();
  EXPECT_EQ(verdict.size(), static_cast<int64_t>(entries.size()));
  EXPECT_GE(verdict.checkpoints_checked(), 2);  // signed before the kill and after the restart
  std::printf("audit kill -9: answered=%zu chained_entries=%zu checkpoints=%lld\n", told.size(),
              entries.size(), static_cast<long long>(verdict.checkpoints_checked()));
}

}  // namespace
}  // namespace turnpike::testing
