#include "server/http/sse_writer.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>

namespace turnpike {

bool SseWriter::Congested() {
  if (unsent_.load() + buffered_.load() <= kCongestedBytes) return false;
  paused_.store(true);
  return true;
}

void SseWriter::Start(evhttp_request* request) {
  evhttp_send_reply_start(request, 200, "OK");
  started_ = true;
}

void SseWriter::Write(evhttp_request* request, evhttp_connection* const& connection,
                      std::string_view data, bool queued) {
  if (queued) unsent_.fetch_sub(static_cast<int64_t>(data.size()));
  if (!started_ || connection == nullptr) return;
  evbuffer* out = evbuffer_new();
  evbuffer_add(out, data.data(), data.size());
  evhttp_send_reply_chunk_with_cb(request, out, &SseWriter::OnFlushed, this);
  evbuffer_free(out);
  if (connection == nullptr) return;
  bufferevent* bev = evhttp_connection_get_bufferevent(connection);
  buffered_.store(static_cast<int64_t>(evbuffer_get_length(bufferevent_get_output(bev))));
}

// Everything written reached the socket: resume a paused upstream.
void SseWriter::OnFlushed(evhttp_connection*, void* self) {
  auto* writer = static_cast<SseWriter*>(self);
  writer->buffered_.store(0);
  if (writer->unsent_.load() < kResumeBytes && writer->paused_.exchange(false)) writer->resume_();
}

}  // namespace turnpike
