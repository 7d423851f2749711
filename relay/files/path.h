// The one path normaliser every protocol goes through (DESIGN.md: "one path normaliser").
//
// A request path becomes a catalog path: relative to the origin root, '/'-separated, no empty,
// "." or ".." segments, valid UTF-8 without control characters. Anything that could leave the
// account's root — "..", encoded or not, backslashes, NUL, overlong UTF-8 spellings of '.' or
// '/' — is refused, never resolved (CONTRACT.md). Pure functions; any thread; fuzzed.
#pragma once

#include <string>
#include <string_view>

#include "relay/base/status.h"

namespace siterelay::files {

// Percent-decodes (RFC 3986) `raw`; a '%' not followed by two hex digits is InvalidArgument.
Result<std::string> PercentDecode(std::string_view raw);

// Normalises a decoded path ("/a//b/./c.cfg" -> "a/b/c.cfg"). PermissionDenied for anything that
// escapes or could be read as an escape, InvalidArgument for what is not a path at all (empty
// after normalising is fine: it names the root).
Result<std::string> NormalizePath(std::string_view decoded);

// The catalog path of `path` (already normalised) inside an account `root` ("/" or "/tenant").
std::string JoinRoot(std::string_view root, std::string_view path);

// The last segment of a normalised path ("a/b/0004f282e824-app.log" -> "0004f282e824-app.log").
std::string_view BaseName(std::string_view path);

}  // namespace siterelay::files
