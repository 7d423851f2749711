// Limits on what the admin listener reads from a client, one place for all of them (STYLE.md:
// every buffer that grows with peer input has a named ceiling). The request head is bounded by
// relay/http/limits.h like any other HTTP request's.
#pragma once

#include <cstddef>

namespace siterelay::admin {

// The JSON body of an operator's action (POST /api/v1/configs/release: {"path": "..."}). A
// master config's name is a few dozen bytes; past this the request is refused with 413.
inline constexpr size_t kMaxActionBodyBytes = 4096;

}  // namespace siterelay::admin
