// Decoder of chunked request bodies (RFC 9112 section 7.1): an explicit state machine over
// whatever bytes have arrived, no I/O. Fuzzed in tests/fuzz/http_chunked_fuzz.cc.
//
//   ChunkedDecoder d;
//   std::string_view in = received, data;
//   for (;;) {
//     auto step = d.Next(&in, &data);   // consumes from `in`
//     if (step == ChunkedDecoder::kData) Write(data);   // a view into the input
//     else break;                        // kNeedMore: wait for bytes; kDone; kInvalid: 400
//   }
// Chunk-size lines and trailers are bounded by limits.h; sizes past 2^60 are invalid.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace siterelay::http {

class ChunkedDecoder {
 public:
  enum Step { kData, kNeedMore, kDone, kInvalid };

  Step Next(std::string_view* in, std::string_view* data);
  bool done() const { return state_ == State::kDone; }
  // Decoded bytes so far.
  uint64_t body_bytes() const { return body_bytes_; }

 private:
  enum class State { kSizeLine, kData, kDataEnd, kTrailer, kDone, kInvalid };
  // Collects one line across calls into line_; true when complete (line_ holds it, without EOL).
  bool TakeLine(std::string_view* in, size_t limit, bool* too_long);

  State state_ = State::kSizeLine;
  std::string line_;
  uint64_t remaining_ = 0;
  uint64_t body_bytes_ = 0;
  size_t trailer_bytes_ = 0;
};

}  // namespace siterelay::http
