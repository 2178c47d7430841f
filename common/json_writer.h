// A minimal streaming JSON writer that appends compact JSON to a std::string. simdjson (the
// project's JSON library, chosen for parse speed) parses but does not write, and provider request
// bodies are small and flat, so this is all the writing the project needs. The caller is
// responsible for well-formed nesting (Begin/End pairs, Key before each object value). Not
// thread-safe; one writer per body.
#ifndef TURNPIKE_COMMON_JSON_WRITER_H_
#define TURNPIKE_COMMON_JSON_WRITER_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace turnpike {

class JsonWriter {
 public:
  JsonWriter() = default;

  JsonWriter& BeginObject();
  JsonWriter& EndObject();
  JsonWriter& BeginArray();
  JsonWriter& EndArray();
  JsonWriter& Key(std::string_view key);
  JsonWriter& String(std::string_view value);
  JsonWriter& Int(int64_t value);
  JsonWriter& Double(double value);
  JsonWriter& Bool(bool value);
  JsonWriter& Null();
  // Inserts already-serialized JSON as a value.
  JsonWriter& Raw(std::string_view json);

  const std::string& str() const { return out_; }
  std::string Release() { return std::move(out_); }

  // Appends `s` to `out` as a quoted JSON string with all required escapes; bytes that are not
  // valid UTF-8 become U+FFFD, so the result is valid JSON whatever `s` holds.
  static void AppendQuoted(std::string& out, std::string_view s);

 private:
  void BeforeValue();

  std::string out_;
  // One entry per open container: true once it has a first element.
  std::vector<bool> has_element_;
  bool after_key_ = false;
};

}  // namespace turnpike

#endif  // TURNPIKE_COMMON_JSON_WRITER_H_
