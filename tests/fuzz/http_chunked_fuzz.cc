// libFuzzer target for ChunkedDecoder (relay/http/chunked.h).
//
// A chunked PUT body reaches the decoder in whatever pieces TCP delivers, so the decoder must
// not care where the reads were split: a chunk-size line, a CRLF or a trailer cut in two has to
// decode exactly as if it had come whole. The first input byte seeds the piece sizes (1 to 17
// bytes, uneven, so one input tries splits at many offsets); the rest is the body on the wire.
// The target decodes it in those pieces and again in one piece, and the two runs must agree on
// the decoded bytes, on the last step (kDone, kInvalid or kNeedMore) and, when the body is done,
// on where it ended: the bytes after it are the next pipelined request.
//
// Per step, as the connection code relies on it:
//   - kData: a non-empty view that ends where `in` now begins (it is the bytes just consumed);
//   - kNeedMore: `in` fully consumed, since the decoder keeps partial lines itself;
//   - kDone and kInvalid are final: further calls return them again and consume nothing;
//   - body_bytes() counts exactly the bytes handed out as kData.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "relay/http/chunked.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using siterelay::http::ChunkedDecoder;

struct Decoded {
  std::string body;
  ChunkedDecoder::Step last = ChunkedDecoder::kNeedMore;
  size_t consumed = 0;  // bytes of the input the decoder took
};

// Piece sizes from 1 to 17, from a small linear congruential generator seeded with one byte.
class PieceSizes {
 public:
  explicit PieceSizes(uint8_t seed) : state_(seed) {}
  size_t Next() {
    state_ = static_cast<uint8_t>(state_ * 37u + 11u);
    return 1 + state_ % 17u;
  }

 private:
  uint8_t state_;
};

void CheckFinal(ChunkedDecoder* d, ChunkedDecoder::Step step) {
  // Also with bytes that would be a whole body on their own: a finished decoder takes nothing.
  for (std::string_view more : {std::string_view(), std::string_view("0\r\n\r\n")}) {
    std::string_view in = more;
    std::string_view data = "x";
    FUZZ_CHECK(d->Next(&in, &data) == step);
    FUZZ_CHECK(in.size() == more.size());
    FUZZ_CHECK(data.empty());
  }
  FUZZ_CHECK(d->done() == (step == ChunkedDecoder::kDone));
}

// Feeds `wire` to a fresh decoder, `piece` bytes at a time (all at once when pieces is null).
Decoded Decode(std::string_view wire, PieceSizes* pieces) {
  ChunkedDecoder d;
  Decoded out;
  size_t pos = 0;
  bool finished = false;
  // At least one call, so an empty body gives kNeedMore in both runs.
  do {
    size_t n = pieces == nullptr ? wire.size() : pieces->Next();
    std::string_view in = wire.substr(pos, n);
    pos += in.size();
    for (;;) {
      std::string_view data;
      size_t before = in.size();
      ChunkedDecoder::Step step = d.Next(&in, &data);
      out.consumed += before - in.size();
      out.last = step;
      if (step == ChunkedDecoder::kData) {
        FUZZ_CHECK(!data.empty());
        FUZZ_CHECK(data.data() + data.size() == in.data());
        out.body.append(data);
        continue;
      }
      FUZZ_CHECK(data.empty());
      if (step == ChunkedDecoder::kNeedMore) {
        FUZZ_CHECK(in.empty());
      } else {
        finished = true;
      }
      break;
    }
  } while (!finished && pos < wire.size());
  FUZZ_CHECK(d.body_bytes() == out.body.size());
  if (finished) {
    CheckFinal(&d, out.last);
  } else {
    FUZZ_CHECK(!d.done());
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view wire(reinterpret_cast<const char*>(data) + 1, size - 1);
  PieceSizes pieces(data[0]);
  Decoded split = Decode(wire, &pieces);
  Decoded whole = Decode(wire, nullptr);
  FUZZ_CHECK(split.last == whole.last);
  FUZZ_CHECK(split.body == whole.body);
  // Where the body ended decides where the next request starts. kNeedMore took everything;
  // after kInvalid the connection closes, so how much of the bad line was taken does not matter.
  if (whole.last != ChunkedDecoder::kInvalid) FUZZ_CHECK(split.consumed == whole.consumed);
  if (whole.last == ChunkedDecoder::kNeedMore) FUZZ_CHECK(whole.consumed == wire.size());
  return 0;
}
