#include "server/usage/usage_recorder.h"

#include "absl/status/status.h"
#include "common/thread_name.h"
#include "server/usage/audit_evidence.h"

namespace turnpike {

usage::v1::UsageRecord ToUsageRecord(const RequestFinished& event, const std::string& node_id) {
  usage::v1::UsageRecord r;
  r.set_request_id(event.request_id);
  r.set_node_id(node_id);
  r.set_caller(event.caller);
  r.set_capability(event.capability);
  r.set_provider(event.provider);
  r.set_model(event.model);
  r.set_input_tokens(event.input_tokens);
  r.set_output_tokens(event.output_tokens);
  r.set_cached_input_tokens(event.cached_input_tokens);
  r.set_cache_write_input_tokens(event.cache_write_input_tokens);
  r.set_reasoning_output_tokens(event.reasoning_output_tokens);
  r.set_cost_usd_micros(event.cost_usd_micros);
  r.set_status(absl::StatusCodeToString(event.status.code()));
  r.set_partial(event.partial);
  const absl::Duration since_epoch = event.start_time - absl::UnixEpoch();
  r.mutable_start_time()->set_seconds(absl::ToInt64Seconds(since_epoch));
  r.mutable_start_time()->set_nanos(static_cast<int32_t>(
      absl::ToInt64Nanoseconds(since_epoch - absl::Seconds(absl::ToInt64Seconds(since_epoch)))));
  r.set_latency_us(absl::ToInt64Microseconds(event.latency));
  r.set_user(event.end_user);
  for (const auto& [key, value] : event.tags) (*r.mutable_tags())[key] = value;
  r.set_trace_id(event.trace_id);
  r.set_config_version(event.config_version);
  r.set_credential(event.credential);
  switch (event.method) {
    case RequestMethod::kStreamCompletion:
      r.set_method(usage::v1::METHOD_STREAM_COMPLETION);
      break;
    case RequestMethod::kComplete:
      r.set_method(usage::v1::METHOD_COMPLETE);
      break;
    case RequestMethod::kEmbed:
      r.set_method(usage::v1::METHOD_EMBED);
      break;
    case RequestMethod::kClassify:
      r.set_method(usage::v1::METHOD_CLASSIFY);
      break;
  }
  r.set_usage_estimated(event.usage_estimated);
  r.set_cost_known(event.cost_known);
  r.set_input_cost_usd_micros(event.input_cost_usd_micros);
  r.set_cached_input_cost_usd_micros(event.cached_input_cost_usd_micros);
  r.set_cache_write_cost_usd_micros(event.cache_write_cost_usd_micros);
  r.set_output_cost_usd_micros(event.output_cost_usd_micros);
  // Prices travel in the config snapshot: its version is the price version (none when the
  // model had no price).
  if (event.cost_known) r.set_price_version(event.config_version);
  r.set_cache_hit(event.cache_hit);
  r.set_degraded(event.degraded);
  r.set_tier_chain(event.tier_chain);
  r.set_variant(event.variant);
  r.set_latency_class(std::string(LatencyClassName(event.latency_class)));
  for (v1::RequestFeature f : event.features) r.add_features(f);
  r.set_refused(event.refused);
  r.set_attempts(event.attempts.size());
  if (event.time_to_first_token != absl::InfiniteDuration()) {
    r.set_time_to_first_token_us(absl::ToInt64Microseconds(event.time_to_first_token));
  }
  FillEvidenceHeader(event, *r.mutable_audit());
  return r;
}

UsageRecorder::UsageRecorder(UsageSpool& spool, std::string node_id, Options options,
                             std::function<void()> on_dropped)
    : spool_(spool),
      node_id_(std::move(node_id)),
      options_(options),
      on_dropped_(std::move(on_dropped)),
      digester_([this] { DigestLoop(); }) {}

UsageRecorder::~UsageRecorder() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  digester_.join();
}

void UsageRecorder::OnRequestFinished(const RequestFinished& event) {
  Pending pending(ToUsageRecord(event, node_id_), event.content);
  if (pending.second != nullptr) {
    absl::MutexLock lock(&mu_);
    if (!stopping_ && queue_.size() < options_.digest_queue_capacity) {
      queue_.push_back(std::move(pending));
      ++accepted_;
      return;
    }
  }
  if (pending.second != nullptr) inline_digests_.fetch_add(1, std::memory_order_relaxed);
  Spool(pending);
}

void UsageRecorder::Spool(Pending& pending) {
  if (pending.second != nullptr) {
    FillContentEvidence(*pending.second, options_.excerpt_max_bytes,
                        *pending.first.mutable_audit());
  }
  if (!spool_.Append(pending.first) && on_dropped_) on_dropped_();
}

void UsageRecorder::DigestLoop() {
  NameThisThread("tp-usage-digest");
  while (true) {
    Pending pending;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]()
                       ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || !queue_.empty(); };
      mu_.Await(absl::Condition(&ready));
      if (queue_.empty()) return;  // stopping, and nothing left
      pending = std::move(queue_.front());
      queue_.pop_front();
    }
    Spool(pending);
    absl::MutexLock lock(&mu_);
    ++handled_;
  }
}

void UsageRecorder::Flush() {
  absl::MutexLock lock(&mu_);
  const int64_t target = accepted_;
  auto done = [this, target]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return handled_ >= target; };
  mu_.Await(absl::Condition(&done));
}

}  // namespace turnpike
