// Content-Type by file extension, as CONTRACT.md lists it for phones. Pure; any thread.
#pragma once

#include <string_view>

namespace siterelay {

// `.cfg`/`.xml` application/xml, `.ld`/`.bin` application/octet-stream, `.ver`/`.log`/`.txt`
// text/plain, and application/octet-stream for anything else: IIS's 404 on unknown extensions is
// a known phone-provisioning failure (PHONES.md), so every file is served with some type.
std::string_view ContentTypeForPath(std::string_view path);

}  // namespace siterelay
