// libFuzzer target for ParseReleaseRequest() (relay/admin/api.h): the body of POST
// /api/v1/configs/release, bytes from a client of the admin listener. Beyond never crashing (the
// JSON parser must not throw: the handler runs on the loop thread): an error is one
// InvalidArgument with a message; an accepted body is a JSON object whose "path" member is the
// non-empty string returned.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "relay/admin/api.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  auto path = siterelay::admin::ParseReleaseRequest(body);
  if (!path.ok()) {
    FUZZ_CHECK(path.status().Is(siterelay::StatusCode::kInvalidArgument));
    FUZZ_CHECK(!path.status().message().empty());
    return 0;
  }
  FUZZ_CHECK(!path->empty());
  nlohmann::json doc = nlohmann::json::parse(body, nullptr, false);
  FUZZ_CHECK(!doc.is_discarded() && doc.is_object());
  FUZZ_CHECK(doc.contains("path") && doc["path"].is_string());
  FUZZ_CHECK(doc["path"].get_ref<const std::string&>() == *path);
  return 0;
}
