// A real in-process control plane (SQLite file in a temporary directory, gRPC on a loopback
// port chosen by the kernel) for the watch-protocol and admin-service tests.
#ifndef TURNPIKE_TESTS_CONTROLPLANE_CONTROL_PLANE_TEST_UTIL_H_
#define TURNPIKE_TESTS_CONTROLPLANE_CONTROL_PLANE_TEST_UTIL_H_

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "controlplane/control_plane.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "tests/controlplane/admin_test_util.h"
#include "tests/controlplane/test_util.h"

namespace turnpike::controlplane::testing {

class ControlPlaneFixture : public ::testing::Test {
 protected:
  void SetUp() override { StartControlPlane("127.0.0.1:0"); }
  void TearDown() override { cp_.reset(); }

  void StartControlPlane(const std::string& listen) {
    ControlPlane::Options o;
    o.db_path = dir_.File("cp.db");
    o.listen_address = listen;
    auto key = MasterKey::Parse(kTestMasterKey);
    ASSERT_TRUE(key.ok());
    auto cp = ControlPlane::Start(o, *key, Clock::Real());
    ASSERT_TRUE(cp.ok()) << cp.status();
    cp_ = *std::move(cp);
    port_ = cp_->port();
  }
  // Stops the control plane and starts a new one on the same port and database.
  void RestartControlPlane() {
    cp_.reset();
    StartControlPlane(absl::StrCat("127.0.0.1:", port_));
  }

  std::string target() const { return absl::StrCat("127.0.0.1:", port_); }
  std::shared_ptr<grpc::Channel> Channel() const {
    return grpc::CreateChannel(target(), grpc::InsecureChannelCredentials());
  }
  int64_t CurrentVersion() { return cp_->admin().GetConfigVersion()->version; }

  // One admin change (a new provider); returns the new config version.
  int64_t Change() {
    auto p = cp_->admin().CreateResource(MakeProvider(absl::StrCat("p", ++changes_)), "test");
    EXPECT_TRUE(p.ok()) << p.status();
    return CurrentVersion();
  }

  turnpike::testing::TempDir dir_;
  std::unique_ptr<ControlPlane> cp_;
  int port_ = 0;
  int changes_ = 0;
};

}  // namespace turnpike::controlplane::testing

#endif  // TURNPIKE_TESTS_CONTROLPLANE_CONTROL_PLANE_TEST_UTIL_H_
