// Every limit of the HTTP front-end, in one place (vsftpd's defs.h habit). Each buffer that grows
// with what a peer sends has its ceiling here; tests probe N-1, N and N+1.
#pragma once

#include <cstddef>
#include <cstdint>

namespace siterelay::http {

// Request line ("GET /path HTTP/1.1"): past this the answer is 414 URI Too Long. Phones ask for
// short paths; 8 KiB is what RFC 9112 section 3 recommends supporting at least.
inline constexpr size_t kMaxRequestLineBytes = 8192;
// The whole head (request line and header fields): past this, 431.
inline constexpr size_t kMaxHeadBytes = 16384;
// Header fields in one request: past this, 431.
inline constexpr size_t kMaxHeaderCount = 100;
// A chunk-size line of a chunked body, extensions included ("1000;name=value\r\n").
inline constexpr size_t kMaxChunkLineBytes = 1024;
// Trailer section after the last chunk.
inline constexpr size_t kMaxTrailerBytes = 8192;

}  // namespace siterelay::http
