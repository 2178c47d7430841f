// A process-wide Resilience on a simulated clock, for tests that build a RuntimeConfig but do not
// look at upstream state (RuntimeConfig::Build resolves every target's state in one).
#ifndef TURNPIKE_TESTS_SERVER_CONFIG_TEST_RESILIENCE_H_
#define TURNPIKE_TESTS_SERVER_CONFIG_TEST_RESILIENCE_H_

#include <random>

#include "common/clock.h"
#include "server/resilience/resilience.h"

namespace turnpike {

inline Resilience& TestResilience() {
  static SimulatedClock* clock = new SimulatedClock();
  static std::mt19937_64* gen = new std::mt19937_64(1);
  static Resilience* resilience = new Resilience(Resilience::Options(), *clock, *gen);
  return *resilience;
}

}  // namespace turnpike

#endif  // TURNPIKE_TESTS_SERVER_CONFIG_TEST_RESILIENCE_H_
