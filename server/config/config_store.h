// ConfigStore holds the current RuntimeConfig and swaps it atomically when a new snapshot is
// applied. Readers take one shared_ptr per request and keep it for the whole request, so a swap
// never disturbs a request in flight. Lock-free reads; thread-safe.
#ifndef TURNPIKE_SERVER_CONFIG_CONFIG_STORE_H_
#define TURNPIKE_SERVER_CONFIG_CONFIG_STORE_H_

#include <atomic>
#include <memory>

#include "server/config/runtime_config.h"

namespace turnpike {

class ConfigStore {
 public:
  // nullptr until the first config is applied.
  std::shared_ptr<const RuntimeConfig> Get() const {
    return current_.load(std::memory_order_acquire);
  }
  void Set(std::shared_ptr<const RuntimeConfig> config) {
    current_.store(std::move(config), std::memory_order_release);
  }

 private:
  std::atomic<std::shared_ptr<const RuntimeConfig>> current_;
};

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_CONFIG_CONFIG_STORE_H_
