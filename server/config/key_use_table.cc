#include "server/config/key_use_table.h"

#include <algorithm>

namespace turnpike {

KeyUseTable::Slot& KeyUseTable::SlotFor(std::string_view key_id) {
  absl::MutexLock lock(&mu_);
  std::unique_ptr<Slot>& slot = slots_[std::string(key_id)];
  if (slot == nullptr) slot = std::make_unique<Slot>(0);
  return *slot;
}

std::vector<std::pair<std::string, int64_t>> KeyUseTable::Uses() const {
  std::vector<std::pair<std::string, int64_t>> out;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, slot] : slots_) {
      const int64_t minute = slot->load(std::memory_order_relaxed);
      if (minute > 0) out.emplace_back(id, minute);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace turnpike
