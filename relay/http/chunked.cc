#include "relay/http/chunked.h"

#include "relay/http/limits.h"

namespace siterelay::http {

bool ChunkedDecoder::TakeLine(std::string_view* in, size_t limit, bool* too_long) {
  size_t lf = in->find('\n');
  size_t take = lf == std::string_view::npos ? in->size() : lf + 1;
  if (line_.size() + take > limit + 2) {  // +2: the CRLF itself
    *too_long = true;
    return false;
  }
  line_.append(in->substr(0, take));
  in->remove_prefix(take);
  if (lf == std::string_view::npos) return false;
  line_.pop_back();  // '\n'
  if (!line_.empty() && line_.back() == '\r') line_.pop_back();
  return true;
}

ChunkedDecoder::Step ChunkedDecoder::Next(std::string_view* in, std::string_view* data) {
  *data = {};
  for (;;) {
    switch (state_) {
      case State::kSizeLine: {
        bool too_long = false;
        if (!TakeLine(in, kMaxChunkLineBytes, &too_long)) {
          if (too_long) state_ = State::kInvalid;
          return too_long ? kInvalid : kNeedMore;
        }
        // chunk-size [ BWS ";" chunk-ext ] — extensions carry nothing we use.
        uint64_t size = 0;
        size_t i = 0;
        for (; i < line_.size(); ++i) {
          char c = line_[i];
          int v = (c >= '0' && c <= '9')   ? c - '0'
                  : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                  : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                           : -1;
          if (v < 0) break;
          if (size >> 60 != 0) {
            state_ = State::kInvalid;
            return kInvalid;
          }
          size = size << 4 | static_cast<uint64_t>(v);
        }
        size_t after = i;
        while (after < line_.size() && (line_[after] == ' ' || line_[after] == '\t')) ++after;
        if (i == 0 || (after < line_.size() && line_[after] != ';')) {
          state_ = State::kInvalid;
          return kInvalid;
        }
        line_.clear();
        remaining_ = size;
        state_ = size == 0 ? State::kTrailer : State::kData;
        break;
      }
      case State::kData: {
        if (in->empty()) return kNeedMore;
        size_t n = remaining_ < in->size() ? static_cast<size_t>(remaining_) : in->size();
        *data = in->substr(0, n);
        in->remove_prefix(n);
        remaining_ -= n;
        body_bytes_ += n;
        if (remaining_ == 0) state_ = State::kDataEnd;
        return kData;
      }
      case State::kDataEnd: {
        bool too_long = false;
        if (!TakeLine(in, 0, &too_long)) {
          if (too_long) state_ = State::kInvalid;
          return too_long ? kInvalid : kNeedMore;
        }
        if (!line_.empty()) {  // data must end exactly where the chunk size said
          state_ = State::kInvalid;
          return kInvalid;
        }
        state_ = State::kSizeLine;
        break;
      }
      case State::kTrailer: {
        bool too_long = false;
        size_t before = in->size();
        bool complete = TakeLine(in, kMaxTrailerBytes, &too_long);
        trailer_bytes_ += before - in->size();
        if (too_long || trailer_bytes_ > kMaxTrailerBytes + 2) {
          state_ = State::kInvalid;
          return kInvalid;
        }
        if (!complete) return kNeedMore;
        bool end = line_.empty();
        line_.clear();
        if (end) {
          state_ = State::kDone;
          return kDone;
        }
        break;  // a trailer field: ignored
      }
      case State::kDone:
        return kDone;
      case State::kInvalid:
        return kInvalid;
    }
  }
}

}  // namespace siterelay::http
