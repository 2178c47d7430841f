// POST /v1/chat/completions: OpenAI's chat request in, the gateway's ChatExchange, and the reply
// as one JSON body or as server-sent events in OpenAI's chunk format (docs/openai-compatible.md).
#include <event2/http.h>

#include "absl/strings/str_cat.h"
#include "server/exchange/chat_exchange.h"
#include "server/exchange/exchange_handle.h"
#include "server/grpc/completion_admission.h"
#include "server/http/http_call.h"
#include "server/http/openai_tools_wire.h"
#include "server/http/openai_wire.h"
#include "server/http/sse_writer.h"

namespace turnpike {
namespace {

class ChatCall final : public HttpFrontDoor::Call, public ChatListener {
 public:
  using Call::Call;

  // Event thread.
  void Run() {
    authorization_ = Headers("Authorization");
    absl::StatusOr<std::string> body = Body();
    absl::StatusOr<OpenAiChatRequest> parsed =
        body.ok() ? ParseOpenAiChatRequest(*body)
                  : absl::StatusOr<OpenAiChatRequest>(body.status());
    if (parsed.ok()) chat_ = *std::move(parsed);
    ExchangeRequest r =
        BeginRequest(chat_.stream ? RequestMethod::kStreamCompletion : RequestMethod::kComplete);
    absl::Status status = parsed.status();
    if (status.ok()) {
      status = AdmitCompletionRequest(
          env_, [this](const RuntimeConfig&) { return Credentials(); }, absl::InfiniteFuture(),
          &chat_.request, &r);
    }
    request_id_ = chat_.request.request_id();
    header_.id = absl::StrCat("chatcmpl-", chat_.request.request_id());
    header_.created = absl::ToUnixSeconds(r.accepted_wall);
    header_.model = chat_.request.capability();
    AdmitAndStart(status, std::move(r), CompletionSize(chat_.request));
  }

  void Cancel() override { exchange_.Cancel(); }

  // ChatListener (upstream loop thread).
  void OnCommit(const v1::CompletionStart& start) override {
    if (!chat_.stream) return;
    PostHere([this, start] { StartStream(start); });
  }

  // A stream sends each piece as a `tool_calls` delta; a unary exchange delivers each call whole.
  void OnToolCall(const ToolCallFragment& fragment) override {
    if (!chat_.stream) {
      v1::ToolCall& call = tool_calls_.emplace_back();
      call.set_id(std::string(fragment.id));
      call.set_name(std::string(fragment.name));
      call.set_arguments_json(std::string(fragment.arguments));
      return;
    }
    std::string event = ToolCallChunkEvent(header_, fragment, chat_.include_usage);
    sse_.Queued(static_cast<int64_t>(event.size()));
    PostHere([this, event = std::move(event)] {
      sse_.Write(request_, connection_, event, /*queued=*/true);
    });
  }

  void OnText(std::string_view text) override {
    if (!chat_.stream) {
      text_.append(text);
      return;
    }
    std::string event = TextChunkEvent(header_, text, chat_.include_usage);
    sse_.Queued(static_cast<int64_t>(event.size()));
    PostHere([this, event = std::move(event)] {
      sse_.Write(request_, connection_, event, /*queued=*/true);
    });
  }

  bool Congested() override { return sse_.Congested(); }

  void OnDone(const absl::Status& status, const v1::CompletionFinish& finish) override {
    exchange_.Done();
    if (!chat_.stream) {
      std::string body = status.ok() ? ChatCompletionJson(header_, text_, tool_calls_, finish) : "";
      PostHere([this, status, body = std::move(body)] {
        if (!status.ok()) {
          ReplyError(status);
          return;
        }
        AddAllowanceHeaders();
        Reply(200, "application/json", body);
      });
    } else if (status.ok()) {
      std::string tail = FinishChunkEvent(header_, finish.finish_reason(), chat_.include_usage);
      if (chat_.include_usage) tail += UsageChunkEvent(header_, finish.usage());
      tail += kDoneEvent;
      PostHere([this, tail = std::move(tail)] { EndStream(tail); });
    } else {
      PostHere([this, status] {
        if (!sse_.started()) {  // nothing sent yet: a plain HTTP error
          ReplyError(status);
        } else {  // after the 200: an error event, never a silent end
          EndStream(ErrorEvent(status));
        }
      });
    }
    Unref();  // the exchange's reference
  }

 private:
  void StartExchange(ExchangeRequest r) override {
    Ref();  // the exchange's reference, dropped in OnDone
    exchange_.Start(ChatExchange::Create(std::move(r), ToChatRequest(chat_.request), chat_.stream,
                                         this, *env_->transport, *env_->resilience, env_->finished,
                                         env_->metrics));
  }

  // Event thread.
  void StartStream(const v1::CompletionStart& start) {
    if (connection_ == nullptr) return;  // the client left: nothing to start
    AddAllowanceHeaders();
    AddHeader("x-request-id", request_id_);
    AddHeader("Content-Type", "text/event-stream");
    AddHeader("Cache-Control", "no-cache");
    AddHeader("x-turnpike-provider", start.provider());
    AddHeader("x-turnpike-model", start.model());
    sse_.Start(request_);
    sse_.Write(request_, connection_, RoleChunkEvent(header_, chat_.include_usage));
  }

  void EndStream(std::string_view tail) {
    sse_.Write(request_, connection_, tail);
    ForgetConnection();
    evhttp_send_reply_end(request_);
    Done();
  }

  OpenAiChatRequest chat_;  // set on the event thread before the exchange; read-only after
  ChunkHeader header_;      // likewise
  std::string text_;        // non-streaming: the reply so far (upstream loop thread)
  std::vector<v1::ToolCall> tool_calls_;  // non-streaming: the calls (upstream loop thread)
  ExchangeHandle<ChatExchange> exchange_;
  SseWriter sse_{[this] {
    if (std::shared_ptr<ChatExchange> resume = exchange_.Running()) resume->Resume();
  }};
};

}  // namespace

void RunChatCall(HttpFrontDoor* door, CallEnv* env, evhttp_request* request) {
  (new ChatCall(door, env, request))->Run();
}

}  // namespace turnpike
