#include "server/resilience/resilience.h"

#include "absl/random/distributions.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/string_view_compat.h"

namespace turnpike {

Resilience::Resilience(Options options, Clock& clock, absl::BitGenRef rng)
    : options_(std::move(options)), clock_(clock), rng_(rng) {}

UpstreamState& Resilience::Upstream(std::string_view provider, std::string_view model,
                                    std::string_view credential) {
  std::string key(provider);
  key.push_back('\0');
  key.append(model);
  key.push_back('\0');
  key.append(credential);
  {
    absl::ReaderMutexLock lock(&mu_);
    auto it = upstreams_.find(key);
    if (it != upstreams_.end()) return *it->second;
  }
  absl::MutexLock lock(&mu_);
  auto it = upstreams_.find(key);
  if (it != upstreams_.end()) return *it->second;
  std::string credential_key(provider);
  credential_key.push_back('\0');
  credential_key.append(credential);
  std::unique_ptr<CredentialState>& cred = credentials_[credential_key];
  if (cred == nullptr) cred = std::make_unique<CredentialState>();
  auto state = std::make_unique<UpstreamState>(absl::StrCat(Absl(provider), "/", Absl(model)),
                                               cred.get(), absl::Uniform<uint64_t>(rng_),
                                               options_.throttle, options_.budget);
  UpstreamState& ref = *state;
  upstreams_.emplace(key, std::move(state));
  return ref;
}

ResponseCache& Resilience::Cache(std::string_view capability, size_t max_bytes) {
  const std::string key(capability);
  {
    absl::ReaderMutexLock lock(&mu_);
    auto it = caches_.find(key);
    if (it != caches_.end()) {
      it->second->SetMaxBytes(max_bytes);
      return *it->second;
    }
  }
  absl::MutexLock lock(&mu_);
  std::unique_ptr<ResponseCache>& cache = caches_[key];
  if (cache == nullptr) cache = std::make_unique<ResponseCache>(max_bytes);
  cache->SetMaxBytes(max_bytes);
  return *cache;
}

void Resilience::Report(const std::string& event) const {
  if (options_.on_event) options_.on_event(event);
}

std::vector<UpstreamStatus> Resilience::Status() const {
  std::vector<std::pair<std::string, UpstreamState*>> states;
  {
    absl::ReaderMutexLock lock(&mu_);
    for (const auto& [key, state] : upstreams_) states.emplace_back(key, state.get());
  }
  const absl::Time now = clock_.MonotonicNow();
  std::vector<UpstreamStatus> out;
  out.reserve(states.size());
  for (const auto& [key, s] : states) {
    UpstreamStatus status = s->Status(now);
    // The key is provider \0 model \0 credential (see Upstream()).
    std::vector<std::string> parts = absl::StrSplit(key, '\0');
    if (parts.size() == 3) {
      status.provider = std::move(parts[0]);
      status.model = std::move(parts[1]);
      status.credential = std::move(parts[2]);
    }
    out.push_back(std::move(status));
  }
  return out;
}

}  // namespace turnpike
