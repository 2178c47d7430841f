// What a chat reply that reached the caller is metered at: its tokens (the provider's counts, or
// an estimate, marked as such and never zero, when the provider reported none) and their cost at
// the target's price (docs/usage.md), and the Usage the caller is told in CompletionFinish.
// ChatExchange (chat_exchange.h) calls these once per request. Pure functions of their
// arguments: no I/O, no clock, safe to call from any thread.
#ifndef TURNPIKE_SERVER_EXCHANGE_CHAT_USAGE_H_
#define TURNPIKE_SERVER_EXCHANGE_CHAT_USAGE_H_

#include <cstddef>
#include <cstdint>

#include "google/protobuf/repeated_ptr_field.h"
#include "server/config/runtime_config.h"
#include "server/exchange/request_finished.h"
#include "server/providers/provider_adapter.h"
#include "turnpike/v1/common.pb.h"
#include "turnpike/v1/completion.pb.h"

namespace turnpike {

// Token estimate for usage the provider never reported (a stream cut off after text was sent):
// about four bytes of text per token, rounded up, so partial usage is never zero.
int64_t EstimateTokens(size_t bytes);

// Sets `event`'s token counts, `usage_estimated` and cost (total, components, `cost_known`) for
// a reply served by `target` that ended with `finish` (its counts already normalized) after
// `reply_bytes` of text. When the provider reported no usage, input and output are at least the
// estimates of `prompt`'s text (may be null) and of the reply. Other fields are left alone.
void MeterChatUsage(const ChatFinish& finish,
                    const google::protobuf::RepeatedPtrField<v1::Message>* prompt,
                    size_t reply_bytes, const TargetEntry& target, RequestFinished& event);

// The usage the caller is told (CompletionFinish.usage), as `event` metered it.
v1::Usage UsageOf(const RequestFinished& event);

}  // namespace turnpike

#endif  // TURNPIKE_SERVER_EXCHANGE_CHAT_USAGE_H_
