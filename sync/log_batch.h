// Log batches (CONTRACT.md "Upstream formats"): phones' log lines as NDJSON, one object per line,
// compressed as one zstd frame that plain `zstd -d` decodes. Pure functions: any thread; the
// shipper (sync/log_shipper.h) runs them on the libuv pool.
//
// A record is written by hand rather than through a JSON library: a relay batches every line a
// site's phones log, and this is the hot path (docs/BENCHMARKS.md "Logs"). The "line" string is
// escaped per RFC 8259; bytes that are not valid UTF-8 become U+FFFD, so a phone's garbage never
// makes a batch unparseable upstream.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "relay/base/status.h"

namespace siterelay::sync {

// zstd level for batches: on phone logs 6 writes 16% fewer bytes than 3 (zstd's default, which
// does worse than 1 here) at about 230 MB/s a core; docs/BENCHMARKS.md "Logs" has each level.
inline constexpr int kLogBatchLevel = 6;

// "2026-11-25T20:00:00Z".
std::string FormatRfc3339(int64_t unix_seconds);

// Appends `s` as a JSON string (quotes included) to *out.
void AppendJsonString(std::string* out, std::string_view s);

// Appends one NDJSON record (with its '\n'):
// {"relay":"...","mac":"...","file":"app","seq":N,"received":"...","line":"..."}
void AppendLogRecord(std::string* out, std::string_view relay, std::string_view mac,
                     std::string_view file, uint64_t seq, int64_t received,
                     std::string_view line);

// One zstd frame of `data` (with its content size, so `zstd -d` and streaming decoders both
// know it). With `dictionary` (a zstd dictionary's bytes) the frame names the dictionary's id and
// only a decoder that has it can read it.
Result<std::string> CompressFrame(std::string_view data, int level = kLogBatchLevel,
                                  std::string_view dictionary = {});

// The lines of `data` ready to batch: each complete line (without its "\n" or "\r\n"); the bytes
// after the last '\n' are left (*rest_at is where they start) unless `take_partial`, when they
// are a line of their own.
std::vector<std::string_view> SplitLines(std::string_view data, bool take_partial,
                                         size_t* rest_at);

}  // namespace siterelay::sync
