#include "sync/log_batch.h"

#include <zstd.h>

#include <ctime>

#include "relay/base/strings.h"

namespace siterelay::sync {
namespace {

}  // namespace

std::string FormatRfc3339(int64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return std::string(buf, n);
}

void AppendJsonString(std::string* out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  size_t i = 0;
  while (i < s.size()) {
    // Runs of plain printable ASCII go in one append.
    size_t j = i;
    while (j < s.size()) {
      unsigned char c = static_cast<unsigned char>(s[j]);
      if (c < 0x20 || c == '"' || c == '\\' || c >= 0x80) break;
      ++j;
    }
    out->append(s, i, j - i);
    i = j;
    if (i == s.size()) break;
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      size_t n = DecodeUtf8(s.substr(i)).length;
      if (n == 0) {
        out->append("\xEF\xBF\xBD");  // U+FFFD for a byte that is not UTF-8
        ++i;
      } else {
        out->append(s, i, n);
        i += n;
      }
      continue;
    }
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      default:
        out->append("\\u00");
        out->push_back(kHex[c >> 4]);
        out->push_back(kHex[c & 0xf]);
    }
    ++i;
  }
  out->push_back('"');
}

void AppendLogRecord(std::string* out, std::string_view relay, std::string_view mac,
                     std::string_view file, uint64_t seq, int64_t received,
                     std::string_view line) {
  out->append("{\"relay\":");
  AppendJsonString(out, relay);
  out->append(",\"mac\":");
  AppendJsonString(out, mac);
  out->append(",\"file\":");
  AppendJsonString(out, file);
  out->append(",\"seq\":");
  out->append(std::to_string(seq));
  out->append(",\"received\":\"");
  out->append(FormatRfc3339(received));
  out->append("\",\"line\":");
  AppendJsonString(out, line);
  out->append("}\n");
}

Result<std::string> CompressFrame(std::string_view data, int level,
                                  std::string_view dictionary) {
  std::string out(ZSTD_compressBound(data.size()), '\0');
  size_t n;
  if (dictionary.empty()) {
    n = ZSTD_compress(out.data(), out.size(), data.data(), data.size(), level);
  } else {
    ZSTD_CCtx* cctx = ZSTD_createCCtx();
    if (cctx == nullptr) return Status::ResourceExhausted("zstd: out of memory");
    n = ZSTD_compress_usingDict(cctx, out.data(), out.size(), data.data(), data.size(),
                                dictionary.data(), dictionary.size(), level);
    ZSTD_freeCCtx(cctx);
  }
  if (ZSTD_isError(n)) {
    return Status::Internal(std::string("zstd: ") + ZSTD_getErrorName(n));
  }
  out.resize(n);
  return out;
}

std::vector<std::string_view> SplitLines(std::string_view data, bool take_partial,
                                         size_t* rest_at) {
  std::vector<std::string_view> lines;
  size_t pos = 0;
  for (;;) {
    size_t nl = data.find('\n', pos);
    if (nl == std::string_view::npos) break;
    size_t end = nl > pos && data[nl - 1] == '\r' ? nl - 1 : nl;
    lines.push_back(data.substr(pos, end - pos));
    pos = nl + 1;
  }
  if (take_partial && pos < data.size()) {
    lines.push_back(data.substr(pos));
    pos = data.size();
  }
  *rest_at = pos;
  return lines;
}

}  // namespace siterelay::sync
