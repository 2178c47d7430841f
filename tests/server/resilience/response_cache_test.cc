// The response cache: LRU eviction by bytes, TTL and stale reads, and the request key.
#include "server/resilience/response_cache.h"

#include "common/clock.h"
#include "gtest/gtest.h"
#include "server/exchange/chat_exchange.h"

namespace turnpike {
namespace {

ResponseCache::Entry Make(std::string text, absl::Time stored) {
  ResponseCache::Entry e;
  e.text = std::move(text);
  e.provider = "p";
  e.model = "m";
  e.stored = stored;
  return e;
}

TEST(ResponseCacheTest, FreshStaleAndDropped) {
  SimulatedClock clock;
  ResponseCache cache(1 << 20);
  cache.Put("k", Make("hello", clock.Now()));
  const absl::Duration ttl = absl::Seconds(60);
  const absl::Duration drop = absl::Seconds(600);
  auto hit = cache.Get("k", clock.Now(), ttl, drop);
  ASSERT_TRUE(hit.has_value());
  EXPECT_EQ(hit->entry.text, "hello");
  EXPECT_EQ(hit->age, absl::ZeroDuration());
  clock.Advance(absl::Seconds(61));
  EXPECT_FALSE(cache.Get("k", clock.Now(), ttl, drop).has_value());  // not fresh
  hit = cache.Get("k", clock.Now(), drop, drop);                     // usable as a last resort
  ASSERT_TRUE(hit.has_value());
  EXPECT_EQ(hit->age, absl::Seconds(61));
  clock.Advance(absl::Seconds(600));
  EXPECT_FALSE(cache.Get("k", clock.Now(), drop, drop).has_value());
  EXPECT_EQ(cache.entries(), 0u);  // dropped when seen past max stale
  EXPECT_EQ(cache.bytes(), 0u);
}

TEST(ResponseCacheTest, EvictsLeastRecentlyUsedToStayUnderTheBound) {
  SimulatedClock clock;
  const std::string text(1000, 'x');
  const size_t one = ResponseCache::Cost("k0", Make(text, clock.Now()));
  ResponseCache cache(3 * one);
  cache.Put("k0", Make(text, clock.Now()));
  cache.Put("k1", Make(text, clock.Now()));
  cache.Put("k2", Make(text, clock.Now()));
  EXPECT_EQ(cache.bytes(), 3 * one);
  // Touch k0 so k1 is the least recently used.
  ASSERT_TRUE(cache.Get("k0", clock.Now(), absl::Hours(1), absl::Hours(1)).has_value());
  cache.Put("k3", Make(text, clock.Now()));
  EXPECT_LE(cache.bytes(), 3 * one);
  EXPECT_TRUE(cache.Get("k0", clock.Now(), absl::Hours(1), absl::Hours(1)).has_value());
  EXPECT_FALSE(cache.Get("k1", clock.Now(), absl::Hours(1), absl::Hours(1)).has_value());
  EXPECT_TRUE(cache.Get("k3", clock.Now(), absl::Hours(1), absl::Hours(1)).has_value());
  // Replacing an entry does not double-count it.
  cache.Put("k3", Make(text, clock.Now()));
  EXPECT_EQ(cache.entries(), 3u);
  EXPECT_EQ(cache.bytes(), 3 * one);
  // An entry larger than the whole bound is not stored; shrinking evicts.
  cache.Put("huge", Make(std::string(10 * one, 'y'), clock.Now()));
  EXPECT_FALSE(cache.Get("huge", clock.Now(), absl::Hours(1), absl::Hours(1)).has_value());
  cache.SetMaxBytes(one);
  EXPECT_EQ(cache.entries(), 1u);
}

TEST(ChatCacheKeyTest, DependsOnWhatShapesTheReplyOnly) {
  google::protobuf::RepeatedPtrField<v1::Message> messages;
  auto* m = messages.Add();
  m->set_role(v1::ROLE_USER);
  m->set_content("hello");
  ChatRequest a;
  a.messages = &messages;
  // The request id and the end user are not part of ChatRequest, so they cannot change the key;
  // the same request built twice gets the same key.
  ChatRequest b;
  b.messages = &messages;
  EXPECT_EQ(ChatCacheKey("cap", a, 100), ChatCacheKey("cap", b, 100));
  EXPECT_NE(ChatCacheKey("cap", a, 100), ChatCacheKey("other", a, 100));
  EXPECT_NE(ChatCacheKey("cap", a, 100), ChatCacheKey("cap", a, 101));
  b.temperature = 0.5;
  EXPECT_NE(ChatCacheKey("cap", a, 100), ChatCacheKey("cap", b, 100));
  ChatRequest c = a;
  c.stop = {"x"};
  EXPECT_NE(ChatCacheKey("cap", a, 100), ChatCacheKey("cap", c, 100));
  google::protobuf::RepeatedPtrField<v1::Message> other = messages;
  other.Mutable(0)->set_role(v1::ROLE_SYSTEM);
  ChatRequest d = a;
  d.messages = &other;
  EXPECT_NE(ChatCacheKey("cap", a, 100), ChatCacheKey("cap", d, 100));
  EXPECT_EQ(ChatCacheKey("cap", a, 100).size(), 32u);
}

}  // namespace
}  // namespace turnpike
