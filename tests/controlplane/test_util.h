// Helpers shared by the control-plane tests: a private temporary directory per test (removed at
// the end) and waiting on a condition with a deadline instead of sleeping.
#ifndef TURNPIKE_TESTS_CONTROLPLANE_TEST_UTIL_H_
#define TURNPIKE_TESTS_CONTROLPLANE_TEST_UTIL_H_

#include <stdlib.h>

#include <filesystem>
#include <functional>
#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace turnpike::testing {

class TempDir {
 public:
  TempDir() {
    const char* base = getenv("TEST_TMPDIR");
    std::string templ = std::string(base != nullptr ? base : "/tmp") + "/tp-cp-test-XXXXXX";
    char* made = mkdtemp(templ.data());
    path_ = made != nullptr ? made : "";
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Polls `cond` until it holds or `timeout` passes; returns whether it held.
inline bool WaitFor(const std::function<bool()>& cond, absl::Duration timeout = absl::Seconds(10)) {
  absl::Time deadline = absl::Now() + timeout;
  while (!cond()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}

}  // namespace turnpike::testing

#endif  // TURNPIKE_TESTS_CONTROLPLANE_TEST_UTIL_H_
