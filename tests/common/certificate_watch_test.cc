// The certificate files behind a TLS listener: start-up checks that name the file and the
// problem (LoadTlsMaterial), and CertificateWatch on a simulated clock: expiry warnings with the
// days left (at start, then once a day, an error once expired), a renewed pair picked up and
// counted, a rewrite with a key that does not match refused while the pair in use stays.
#include "common/certificate_watch.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <vector>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "tests/common/tls_test_certs.h"

namespace turnpike {
namespace {

using testing::SelfSigned;
using testing::TestCert;

class TlsFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("tp-tls-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string File(const std::string& name) const { return (dir_ / name).string(); }
  // Writes through a rename, as renewal tools do (a reader never sees half a file).
  void Write(const std::string& name, const std::string& text) {
    std::ofstream(File(name + ".tmp")) << text;
    std::filesystem::rename(File(name + ".tmp"), File(name));
  }
  void WritePair(const TestCert& c) {
    Write("tls.key", c.key_pem);
    Write("tls.crt", c.cert_pem);
  }
  TlsFileSet Files() const { return {File("tls.crt"), File("tls.key"), ""}; }

  std::filesystem::path dir_;
};

TEST_F(TlsFilesTest, AGoodPairLoadsWithItsExpiry) {
  WritePair(SelfSigned("gw.example", absl::Hours(24 * 90)));
  absl::StatusOr<TlsMaterial> m = LoadTlsMaterial(Files());
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_NEAR(DaysLeft(m->not_after, absl::Now()), 90.0, 0.01);
  EXPECT_EQ(m->subject, "/CN=gw.example");
}

TEST_F(TlsFilesTest, EachBadFileIsNamedWithItsProblem) {
  const TestCert a = SelfSigned("a", absl::Hours(24));
  const TestCert b = SelfSigned("b", absl::Hours(24));
  Write("a.crt", a.cert_pem);
  Write("a.key", a.key_pem);
  Write("b.key", b.key_pem);
  Write("junk", "not PEM at all\n");
  struct Case {
    TlsFileSet files;
    std::string want;
  };
  const std::vector<Case> cases = {
      {{File("nope.crt"), File("a.key"), ""},
       "certificate " + File("nope.crt") + ": cannot read (No such file or directory)"},
      {{File("a.crt"), File("nope.key"), ""},
       "private key " + File("nope.key") + ": cannot read (No such file or directory)"},
      {{File("junk"), File("a.key"), ""}, "certificate " + File("junk") + ": holds no PEM"},
      {{File("a.crt"), File("junk"), ""}, "private key " + File("junk") + ": holds no PEM"},
      {{File("a.crt"), File("b.key"), ""},
       "private key " + File("b.key") + ": does not match the certificate in " + File("a.crt")},
      {{File("a.crt"), File("a.key"), File("nope-ca.crt")},
       "client CA bundle " + File("nope-ca.crt") + ": cannot read"},
      {{File("a.crt"), File("a.key"), File("junk")},
       "client CA bundle " + File("junk") + ": holds no PEM certificate"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<TlsMaterial> m = LoadTlsMaterial(c.files);
    ASSERT_FALSE(m.ok()) << c.want;
    EXPECT_EQ(m.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_TRUE(absl::StartsWith(m.status().message(), c.want)) << m.status().message();
  }
  if (geteuid() != 0) {  // root reads anything
    std::filesystem::permissions(File("a.key"), std::filesystem::perms::none);
    absl::StatusOr<TlsMaterial> m = LoadTlsMaterial({File("a.crt"), File("a.key"), ""});
    EXPECT_EQ(m.status().message(),
              "private key " + File("a.key") + ": cannot read (Permission denied)");
  }
}

struct Logged {
  absl::LogSeverity severity;
  std::string message;
};

class CertificateWatchTest : public TlsFilesTest {
 protected:
  std::unique_ptr<CertificateWatch> Start() {
    CertificateWatch::Options o;
    o.files = Files();
    o.log = [this](absl::LogSeverity s, const std::string& m) { logged_.push_back({s, m}); };
    absl::StatusOr<std::unique_ptr<CertificateWatch>> w =
        CertificateWatch::Start(std::move(o), clock_, /*start_thread=*/false);
    EXPECT_TRUE(w.ok()) << w.status();
    return w.ok() ? *std::move(w) : nullptr;
  }

  SimulatedClock clock_{absl::Now()};
  std::vector<Logged> logged_;
};

TEST_F(CertificateWatchTest, ExpiryIsWarnedWithTheDaysLeftThenDailyThenAsAnError) {
  WritePair(SelfSigned("gw", absl::Hours(24 * 10)));
  auto watch = Start();
  ASSERT_NE(watch, nullptr);
  ASSERT_EQ(logged_.size(), 1u);
  EXPECT_EQ(logged_[0].severity, absl::LogSeverity::kWarning);
  EXPECT_NE(logged_[0].message.find("expires in 10.0 days; renew it"), std::string::npos)
      << logged_[0].message;
  EXPECT_NEAR(watch->days_left(), 10.0, 0.01);
  // Checked often, warned once a day.
  clock_.Advance(absl::Hours(12));
  watch->CheckNow();
  EXPECT_EQ(logged_.size(), 1u);
  clock_.Advance(absl::Hours(12));
  watch->CheckNow();
  ASSERT_EQ(logged_.size(), 2u);
  EXPECT_NE(logged_[1].message.find("expires in 9.0 days"), std::string::npos);
  // Past notAfter: an error, and the gauge goes negative.
  clock_.Advance(absl::Hours(24 * 10));
  watch->CheckNow();
  ASSERT_EQ(logged_.size(), 3u);
  EXPECT_EQ(logged_[2].severity, absl::LogSeverity::kError);
  EXPECT_NE(logged_[2].message.find("EXPIRED 1.0 days ago"), std::string::npos)
      << logged_[2].message;
  EXPECT_NEAR(watch->days_left(), -1.0, 0.01);
}

TEST_F(CertificateWatchTest, AFarExpiryIsNotWarnedAbout) {
  WritePair(SelfSigned("gw", absl::Hours(24 * 90)));
  auto watch = Start();
  ASSERT_NE(watch, nullptr);
  watch->CheckNow();
  EXPECT_TRUE(logged_.empty());
  EXPECT_EQ(watch->reloads(), 0);
}

TEST_F(CertificateWatchTest, ARenewedPairIsPickedUpAndAMismatchedOneRefused) {
  WritePair(SelfSigned("old", absl::Hours(24 * 90)));
  auto watch = Start();
  ASSERT_NE(watch, nullptr);
  const std::string old_pem = watch->current()->cert_pem;
  // Half a rotation: the new key beside the old certificate. Refused; the old pair stays.
  const TestCert next = SelfSigned("new", absl::Hours(24 * 60));
  Write("tls.key", next.key_pem);
  watch->CheckNow();
  EXPECT_EQ(watch->reload_failures(), 1);
  EXPECT_EQ(watch->reloads(), 0);
  EXPECT_EQ(watch->current()->cert_pem, old_pem);
  ASSERT_FALSE(logged_.empty());
  EXPECT_EQ(logged_.back().severity, absl::LogSeverity::kWarning);
  EXPECT_NE(logged_.back().message.find("does not match"), std::string::npos);
  EXPECT_NE(logged_.back().message.find("(/CN=old) stays"), std::string::npos);
  // The rest of it: picked up, logged with its expiry, counted.
  Write("tls.crt", next.cert_pem);
  watch->CheckNow();
  EXPECT_EQ(watch->reloads(), 1);
  EXPECT_EQ(watch->current()->subject, "/CN=new");
  EXPECT_NEAR(watch->days_left(), 60.0, 0.01);
  EXPECT_EQ(logged_.back().severity, absl::LogSeverity::kInfo);
  EXPECT_NE(logged_.back().message.find("reloaded"), std::string::npos);
  EXPECT_NE(logged_.back().message.find("60.0 days left"), std::string::npos);
  // Unchanged files: nothing more.
  const size_t n = logged_.size();
  watch->CheckNow();
  EXPECT_EQ(logged_.size(), n);
  EXPECT_EQ(watch->reloads(), 1);
}

TEST_F(CertificateWatchTest, ItsThreadChecksEveryIntervalOnTheClock) {
  WritePair(SelfSigned("old", absl::Hours(24 * 90)));
  CertificateWatch::Options o;
  o.files = Files();
  o.interval = absl::Seconds(60);
  absl::StatusOr<std::unique_ptr<CertificateWatch>> w =
      CertificateWatch::Start(std::move(o), clock_, /*start_thread=*/true);
  ASSERT_TRUE(w.ok()) << w.status();
  WritePair(SelfSigned("new", absl::Hours(24 * 90)));
  // Only simulated time moves it: advance until the thread has looked.
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while ((*w)->reloads() == 0 && absl::Now() < deadline) {
    clock_.Advance(absl::Seconds(61));
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_EQ((*w)->reloads(), 1);
  EXPECT_EQ((*w)->current()->subject, "/CN=new");
}

}  // namespace
}  // namespace turnpike
