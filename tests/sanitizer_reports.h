// Sanitizer reports from child processes (docs/sanitizers.md). In a TURNPIKE_SANITIZE build the
// gateway, control plane and fake provider that tests start are sanitized too; a report in one of
// them would only reach its log and, for a leak, only at exit. So a test harness starts each child
// with ChildSanitizerEnv(prefix), which sends ASan/LSan/UBSan reports to files <prefix>.<pid>, and
// after the child has exited calls TakeSanitizerReports(prefix) and fails the test with the text.
// In an unsanitized build the variables are ignored and no file ever appears. Header-only, so every
// harness (tests/integration, tests/fake_provider) shares it without a new library.
#ifndef TURNPIKE_TESTS_SANITIZER_REPORTS_H_
#define TURNPIKE_TESTS_SANITIZER_REPORTS_H_

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

namespace turnpike::testing {

// ASAN_OPTIONS and UBSAN_OPTIONS for a child: the parent's own value (if any) with
// log_path=<prefix> appended, so options a developer set still apply. LSan reports go with ASan's.
inline std::map<std::string, std::string> ChildSanitizerEnv(const std::string& prefix) {
  std::map<std::string, std::string> env;
  for (const char* name : {"ASAN_OPTIONS", "UBSAN_OPTIONS"}) {
    const char* current = std::getenv(name);
    std::string value = current != nullptr ? current : "";
    if (!value.empty()) value += ":";
    env[name] = value + "log_path=" + prefix;
  }
  return env;
}

// The text of every report file <prefix>.* (one per process that reported), removing the files;
// empty if there is none.
inline std::string TakeSanitizerReports(const std::string& prefix) {
  const std::filesystem::path base(prefix);
  std::error_code ec;
  if (!std::filesystem::is_directory(base.parent_path(), ec)) return "";
  std::string reports;
  const std::string stem = base.filename().string() + ".";
  for (const auto& entry : std::filesystem::directory_iterator(base.parent_path(), ec)) {
    const std::string name = entry.path().filename().string();
    if (name.compare(0, stem.size(), stem) != 0) continue;
    std::ifstream in(entry.path());
    std::stringstream text;
    text << in.rdbuf();
    reports += "--- " + entry.path().string() + "\n" + text.str();
    std::filesystem::remove(entry.path(), ec);
  }
  return reports;
}

}  // namespace turnpike::testing

#endif  // TURNPIKE_TESTS_SANITIZER_REPORTS_H_
